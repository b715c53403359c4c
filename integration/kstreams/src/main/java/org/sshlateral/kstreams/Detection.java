package org.sshlateral.kstreams;

import java.util.ArrayList;
import java.util.List;

/**
 * The ESCU search "Linux SSH Remote Services Script Execute": process_name = ssh
 * and the command line contains one of oStrictHostKeyChecking, oConnectTimeout,
 * oBatchMode and one of http:, https:, compared as Splunk does (ASCII case
 * folding, substring for {@code *x*}). A missing by-field is the string "null".
 */
final class Detection {
    private Detection() {}

    static final String NULL = "null";

    private static final String[] OPTIONS = {"ostricthostkeychecking", "oconnecttimeout", "obatchmode"};
    private static final String[] SCHEMES = {"http:", "https:"};

    /** The by-fields of a matching event, in ESCU's order. */
    record Group(String dest, String user, String parentProcessName, String processName, String process,
                 String processId, String parentProcessId) {

        /** Encodes the group as a string key: each field length-prefixed, so no field value can fake a boundary. */
        String encode() {
            StringBuilder sb = new StringBuilder(128);
            for (String f : List.of(dest, user, parentProcessName, processName, process, processId, parentProcessId)) {
                sb.append(f.length()).append(':').append(f);
            }
            return sb.toString();
        }

        static Group decode(String key) {
            List<String> f = new ArrayList<>(7);
            int i = 0;
            while (i < key.length()) {
                int colon = key.indexOf(':', i);
                int n = Integer.parseInt(key, i, colon, 10);
                f.add(key.substring(colon + 1, colon + 1 + n));
                i = colon + 1 + n;
            }
            if (f.size() != 7) {
                throw new IllegalArgumentException("group key has " + f.size() + " fields, want 7");
            }
            return new Group(f.get(0), f.get(1), f.get(2), f.get(3), f.get(4), f.get(5), f.get(6));
        }
    }

    /** Returns the group of a matching record, or null when it does not match. */
    static Group match(String rec) {
        // Cheapest test first: the Image basename must be ssh.
        String image = Sysmon.data(rec, Sysmon.IMAGE);
        if (image == null) {
            return null;
        }
        String name = Sysmon.basename(image);
        if (!asciiLower(name).equals("ssh") || !Sysmon.isProcessCreate(rec)) {
            return null;
        }
        String cmd = Sysmon.data(rec, Sysmon.COMMAND_LINE);
        if (cmd == null) {
            return null;
        }
        String lower = asciiLower(cmd);
        if (!containsAny(lower, OPTIONS) || !containsAny(lower, SCHEMES)) {
            return null;
        }
        String parent = Sysmon.data(rec, Sysmon.PARENT_IMAGE);
        return new Group(orNull(Sysmon.computer(rec)), orNull(Sysmon.data(rec, Sysmon.USER)),
                parent == null ? NULL : Sysmon.basename(parent), name, cmd,
                orNull(Sysmon.data(rec, Sysmon.PROCESS_ID)), orNull(Sysmon.data(rec, Sysmon.PARENT_PROCESS_ID)));
    }

    private static boolean containsAny(String s, String[] needles) {
        for (String n : needles) {
            if (s.contains(n)) {
                return true;
            }
        }
        return false;
    }

    private static String orNull(String s) {
        return s == null ? NULL : s;
    }

    /**
     * Lower-cases A-Z only. String.toLowerCase and equalsIgnoreCase fold
     * Unicode too (U+212A KELVIN SIGN to 'k', U+017F LONG S matches 's'),
     * which Splunk's byte-wise comparison does not.
     */
    static String asciiLower(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 'A' && c <= 'Z') {
                char[] out = s.toCharArray();
                for (int j = i; j < out.length; j++) {
                    if (out[j] >= 'A' && out[j] <= 'Z') {
                        out[j] = (char) (out[j] + ('a' - 'A'));
                    }
                }
                return new String(out);
            }
        }
        return s;
    }
}

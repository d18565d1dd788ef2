"""End-to-end test harness for smtptrace: a private Postfix, smtp-sink and the milter on loopback."""

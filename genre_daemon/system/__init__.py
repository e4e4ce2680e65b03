"""The operating system's side: systemd/launchd units, sd_notify, journald logging."""

"""Camera maintenance: health history, uptime, faults that close themselves, maintenance tickets."""

"""File readers: IGRA v2 and Wyoming soundings, hourly rain-gauge records.

Each reader returns tidy tables in physical units and counts what it drops; nothing here
does QC beyond what the format itself defines (flags, sentinels)."""

"""The public dashboard's publisher: read the public record, render the site, swap it into place.

`reap publish` calls `publish`; bot/ hands `publish_if_due` to the reminder tick, so a quarter
that closes (or is amended) is republished, and a plan's daily "as of" edition kept current.
"""

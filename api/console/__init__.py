"""The web console (控制台): server-rendered Chinese pages for underwriters, regulators and
operators, served by the same app, signed in with an API key, no CDN."""

"""The one clock that stored things' times and expiry read (files, uploads, cached contents), so
that a test moving it (``monkeypatch.setattr(clock, "now", ...)``) moves it for all of them."""

import time

now = time.time

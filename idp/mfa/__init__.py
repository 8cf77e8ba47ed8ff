"""The second factor of the login journey: security codes by email and trusted devices.

* :mod:`.codes` — the 6-digit code: generation, sending, checking (steps 1-3, cases 2, 3, 4, 5);
* :mod:`.devices` — « J'utilise mon ordinateur personnel »: the trusted-device cookie;
* :mod:`.steps` — the journey steps built on them.
"""

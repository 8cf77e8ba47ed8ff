#!/usr/bin/env python3
"""Make the voice files of the spoken CAPTCHA, once, with espeak-ng (voice fr) and sox.

    apt-get install -y espeak-ng sox
    .venv/bin/python scripts/make_captcha_voice.py

Writes ``idp/recovery/voice/<character>.wav`` for every character of the CAPTCHA
alphabet and the two phrases (``_intro``, ``_repeat``): 16 kHz, mono, 16-bit,
leading and trailing silence trimmed. The files are kept in the repository; the
server only concatenates them (idp/recovery/voice.py) and needs neither tool.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from idp.recovery.voice import ALPHABET, PHRASES, RATE, VOICE_DIR  # noqa: E402

SPEED = "140"  # words per minute: slower than espeak's 175, clearer for a series of letters


def make(text: str, target: Path, workdir: Path) -> None:
    raw = workdir / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "fr", "-s", SPEED, "-w", str(raw), text], check=True)
    # Resample to 16 kHz mono 16-bit, trim silence at both ends (reverse, trim the start, reverse).
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(target),
                    "silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"], check=True)


def main() -> int:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        print(f"Missing: {', '.join(missing)} (apt-get install -y espeak-ng sox)", file=sys.stderr)
        return 1
    VOICE_DIR.mkdir(parents=True, exist_ok=True)
    wanted = {char: char for char in ALPHABET} | PHRASES  # espeak-ng reads a lone character as its name
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in wanted.items():
            make(text, VOICE_DIR / f"{name}.wav", Path(tmp))
    for stale in VOICE_DIR.glob("*.wav"):
        if stale.stem not in wanted:
            stale.unlink()
    total = sum(p.stat().st_size for p in VOICE_DIR.glob("*.wav"))
    print(f"{len(wanted)} voice files in {VOICE_DIR.relative_to(ROOT)} ({total // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

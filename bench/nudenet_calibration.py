"""Prints NudeNet's raw scores on generated images with no person in them (README, Calibration).

    .venv/bin/python -m bench.nudenet_calibration

Needs the extra (`pip install -e '.[nudenet]'`). For each image: every class NudeNet reported
(its own floor is 0.2), then the highest score seen on any image, which the cut-off
(bot/core/nudenet_labels.py, SCORE_CUTOFF) must stay above.
"""

from __future__ import annotations

from bench.nudenet_images import images
from bot.adapters.nudenet import load_model, model_input
from bot.core.nudenet_labels import SCORE_CUTOFF, TABLE


def main() -> None:
    detect, version = load_model()
    print(f"model {version}; cut-off {SCORE_CUTOFF}")
    highest: tuple[float, str, str] = (0.0, "", "")
    mapped_highest: tuple[float, str, str] = (0.0, "", "")
    for name, data in images():
        found = detect(model_input(data))
        shown = ", ".join(f"{d['class']} {d['score']:.2f}" for d in found) or "-"
        print(f"{name:24} {shown}")
        for d in found:
            highest = max(highest, (float(d["score"]), str(d["class"]), name))
            if d["class"] in TABLE:
                mapped_highest = max(mapped_highest, (float(d["score"]), str(d["class"]), name))
    print(f"highest score, any class: {highest[0]:.3f} ({highest[1]} on {highest[2]})")
    print(
        f"highest score, mapped classes: {mapped_highest[0]:.3f} "
        f"({mapped_highest[1] or '-'} on {mapped_highest[2] or '-'})"
    )


if __name__ == "__main__":
    main()

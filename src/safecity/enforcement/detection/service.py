"""Which helmet and seat-belt offences can be detected: the installed models and the cameras that ask.

The models are looked up on this host (`vision.registry`); in a city each worker host installs its own
plug-ins, and a camera whose worker lacks the model says so in its health.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from safecity.cameras import service as cameras
from safecity.enforcement.detection.models import OffenceDetection
from safecity.vision import compliance, registry

SETTING = {"helmet": "helmet_enforcement", "seat-belt": "seat_belt_enforcement"}


def offence_detection(session: Session) -> list[OffenceDetection]:
    """Returns, per model-judged offence, whether it is detected here and which cameras switched it on."""
    anpr = cameras.list_cameras(session, kind="anpr")
    result = []
    for task in compliance.TASKS:
        model = registry.installed_for(task)
        offence = compliance.OFFENCE[task]
        # The stored settings as they are: a configuration edited past the checks must not break the page.
        enabled = [
            c.id for c in anpr if isinstance(c.analysis, dict) and c.analysis.get(SETTING[task]) is True
        ]
        if model is None:
            statement = compliance.missing_model_statement(task)
        else:
            statement = (
                f"{compliance.WHAT[task]} offences are detected by {model.name} ({model.licence}); "
                "an officer reviews every one"
            )
        result.append(
            OffenceDetection(
                offence=offence,
                task=task,
                detected=model is not None,
                model=model.name if model else None,
                licence=model.licence if model else None,
                statement=statement,
                cameras=enabled,
            )
        )
    return result

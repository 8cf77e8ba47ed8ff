"""The login journey: an ordered list of steps between ``/authorize`` and the code.

``journey.JOURNEY`` is the data (which steps, in which order); ``flow`` keeps the
server-side state of one login in progress; ``steps`` holds the steps themselves;
``views`` is the one blueprint that shows the current step and moves on.
"""

from .views import bp

__all__ = ["bp"]

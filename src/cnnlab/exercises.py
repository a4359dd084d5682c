"""Self-checks for the notebooks' exercises (introduced in notebook 01), cs231n-style.

An exercise is a `# TODO` cell whose answer starts as `TODO`; the cell after it calls `check`, which
prints one line: ✓ (the answer works), ✗ and a hint (it does not), or "not done yet" (still `TODO`).
A lesson never fails on an exercise; the solutions in notebooks/solutions/ call `strict_mode(True)`,
where an unfinished or failing check raises, so the tests prove every solution works.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

TODO: Any = ...  # an exercise's blank: replace it with your answer
_strict = False


class ExerciseFailed(AssertionError):
    """A check failed (or was not done) under strict mode."""


def strict_mode(on: bool = True) -> None:
    """Strict (the solutions, the tests): a check that fails or is not done raises ExerciseFailed."""
    global _strict
    _strict = bool(on)


def is_todo(answer: Any) -> bool:
    """True while an answer is still the `TODO` blank: the value itself, a function whose code still
    uses the name TODO (`return TODO`), or a tuple holding one of those."""
    items = answer if isinstance(answer, tuple) else (answer,)
    return any(item is TODO or (inspect.isfunction(item) and "TODO" in item.__code__.co_names) for item in items)


def check(name: str, condition: bool | Callable[[], bool], hint: str = "", *, answer: Any = None) -> bool | None:
    """Print whether an exercise works: ✓ / ✗ with `hint` / "not done yet" (while `answer` is TODO).

    `condition` may be a function, called only once the answer is filled in; an error it raises
    (a wrong shape, say) counts as ✗ and is shown. Returns True, False, or None (not done)."""
    if is_todo(answer):
        print(f"○ {name}: not done yet (replace TODO in the cell above)")
        if _strict:
            raise ExerciseFailed(f"{name}: not done")
        return None
    try:
        ok = bool(condition() if callable(condition) else condition)
    except Exception as err:  # noqa: BLE001 -- a student's bug is an answer that does not work yet
        ok, hint = False, f"{type(err).__name__}: {err}" + (f". {hint}" if hint else "")
    print(f"✓ {name}" if ok else f"✗ {name}" + (f": {hint}" if hint else ""))
    if not ok and _strict:
        raise ExerciseFailed(f"{name}: {hint}")
    return ok


__all__ = ["ExerciseFailed", "TODO", "check", "is_todo", "strict_mode"]

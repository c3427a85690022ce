"""A gpiozero mock pin whose reads can be made to fail (a cut sensor wire, a dying GPIO chip)."""

from __future__ import annotations

from gpiozero.pins.mock import MockPin


class FlakyPin(MockPin):
    """A MockPin whose reads raise while `fail` is set; writes and drives still work."""

    fail = False

    def _get_state(self) -> bool:
        if self.fail:
            raise OSError("GPIO read failed")
        return super()._get_state()

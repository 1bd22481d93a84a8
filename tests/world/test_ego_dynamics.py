import numpy as np
import pytest

from drivesim.world.ego import EgoCar, command_for, longitudinal_accel

MAX_SPEED = 40.0


@pytest.mark.parametrize("speed", [0.5, 10.0, 25.0, 38.0])
@pytest.mark.parametrize("accel", [-1.0, -0.4, 0.0, 0.3, 1.0])
def test_command_for_inverts_longitudinal_accel(speed, accel):
    got = command_for(longitudinal_accel(accel, speed, MAX_SPEED, False), speed, MAX_SPEED)
    assert got == pytest.approx(accel, abs=1e-9)


def test_command_for_clips_what_no_command_reaches():
    assert command_for(50.0, 20.0, MAX_SPEED) == 1.0
    assert command_for(-50.0, 20.0, MAX_SPEED) == -1.0


def test_step_uses_longitudinal_accel():
    car = EgoCar(speed=20.0)
    car.step(0.0, 0.5, 0.0, 1 / 30, MAX_SPEED, off_road=False)
    assert car.speed == pytest.approx(20.0 + longitudinal_accel(0.5, 20.0, MAX_SPEED, False) / 30)
    # the speed change of a step recovers the command that caused it
    assert command_for((car.speed - 20.0) * 30, 20.0, MAX_SPEED) == pytest.approx(0.5)
    stopped = EgoCar(speed=0.0)
    stopped.step(0.0, -1.0, 0.0, 1 / 30, MAX_SPEED, off_road=False)
    assert stopped.speed == 0.0 and np.isfinite(stopped.s)

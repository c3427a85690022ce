"""The board profiles as pure codecs: requests as plain data, replies into door states; no I/O."""

from __future__ import annotations

import logging

import pytest

from firmware_bridge.bank import BridgeError, DoorState
from firmware_bridge.modbus.bus import frame_gap_s
from firmware_bridge.modbus.errors import WrongRegisterMap
from firmware_bridge.modbus.logfilter import PYMODBUS_LOGGER, DemotePymodbusNoise
from firmware_bridge.modbus.profiles import (
    COIL_OFF,
    COIL_ON,
    KioskV1Profile,
    ReadBits,
    ReadRegisters,
    WaveshareRelayDProfile,
    WriteCoil,
    WriteRegister,
    profile_for,
)

V1 = KioskV1Profile()
WS = WaveshareRelayDProfile()


def test_kiosk_v1_unlock_is_coil_on_and_pulse_goes_to_holding_register_0() -> None:
    assert V1.configure(750) == (WriteRegister(0, 750),)
    assert V1.unlock(3, 750) == WriteCoil(3, COIL_ON)
    assert V1.read_output(3) == ReadBits(1, 3, 1)
    assert V1.output_off(3) == WriteCoil(3, COIL_OFF)


def test_kiosk_v1_reads_doors_in_one_fc02_and_identity_in_one_fc04() -> None:
    assert V1.read_doors(16) == ReadBits(2, 0, 16)
    assert V1.read_outputs(16) == ReadBits(1, 0, 16)
    assert V1.identify() == ReadRegisters(4, 0, 2)


def test_door_bits_decode_to_states_and_padding_is_ignored() -> None:
    bits = [True, False, False, True, False, False, False, False]  # pymodbus pads to a byte
    assert V1.decode_doors(bits, 4) == {
        0: DoorState.OPEN,
        1: DoorState.SHUT,
        2: DoorState.SHUT,
        3: DoorState.OPEN,
    }


def test_a_short_door_reply_is_refused_not_guessed() -> None:
    with pytest.raises(WrongRegisterMap, match="3 bits, expected 4"):
        V1.decode_doors([False] * 3, 4, where="bus 'b' board 1: ")


def test_kiosk_v1_identity_accepts_version_1_with_enough_channels() -> None:
    assert V1.check_identity([1, 16], 8) == 16
    assert V1.check_identity([1, 8], 8) == 8


def test_kiosk_v1_identity_refuses_another_map_version() -> None:
    with pytest.raises(WrongRegisterMap, match="wrong register-map version 3") as info:
        V1.check_identity([3, 16], 8, where="bus 'rs485' board 3: ")
    assert "bus 'rs485' board 3" in str(info.value)
    assert "flash" in info.value.fix
    assert isinstance(info.value, BridgeError)
    assert info.value.code == "wrong_register_map"


def test_kiosk_v1_identity_refuses_fewer_channels_than_configured() -> None:
    with pytest.raises(WrongRegisterMap, match=r"board has 4 channels.*config asks for 8"):
        V1.check_identity([1, 4], 8)


def test_kiosk_v1_pulse_is_kept_exactly_and_capped() -> None:
    assert V1.effective_pulse_ms(500, 2000) == 500
    assert V1.effective_pulse_ms(2000, 2000) == 2000
    with pytest.raises(ValueError, match="<= max_pulse_ms"):
        V1.effective_pulse_ms(2001, 2000)
    with pytest.raises(ValueError, match="> 0"):
        V1.effective_pulse_ms(0, 2000)


@pytest.mark.parametrize(
    ("pulse_ms", "units"), [(1, 1), (100, 1), (101, 2), (450, 5), (500, 5), (2000, 20)]
)
def test_waveshare_unlock_is_flash_on_in_100_ms_units_rounded_up(pulse_ms: int, units: int) -> None:
    assert WS.unlock(0, pulse_ms) == WriteCoil(0x0200, units)
    assert WS.unlock(7, pulse_ms) == WriteCoil(0x0207, units)


def test_waveshare_pulse_rounds_up_but_never_past_the_cap() -> None:
    assert WS.effective_pulse_ms(450, 2000) == 500
    assert WS.effective_pulse_ms(450, 480) == 400  # 500 would break the 480 ms cap
    assert WS.effective_pulse_ms(100, 100) == 100
    with pytest.raises(ValueError, match="100 ms step"):
        WS.effective_pulse_ms(60, 80)


def test_waveshare_has_no_identity_nor_pulse_register_and_8_channels() -> None:
    assert WS.identify() is None
    assert WS.configure(500) == ()
    assert WS.max_channels == 8
    assert WS.read_doors(8) == ReadBits(2, 0, 8)
    assert WS.output_off(2) == WriteCoil(2, COIL_OFF)


def test_waveshare_input_polarity_is_configurable() -> None:
    bits = [True, False]
    assert WS.decode_doors(bits, 2) == {0: DoorState.OPEN, 1: DoorState.SHUT}
    inverted = WaveshareRelayDProfile(open_level=False)
    assert inverted.decode_doors(bits, 2) == {0: DoorState.SHUT, 1: DoorState.OPEN}


def test_profiles_by_config_name() -> None:
    assert isinstance(profile_for("kiosk-v1"), KioskV1Profile)
    assert isinstance(profile_for("waveshare-relay-d"), WaveshareRelayDProfile)
    with pytest.raises(ValueError, match="unknown Modbus board profile 'gpio'"):
        profile_for("gpio")
    inverted = profile_for("waveshare-relay-d", sensor_open_high=False)
    assert isinstance(inverted, WaveshareRelayDProfile) and inverted.open_level is False
    for value in (True, False):  # the kiosk-v1 map fixes 1 = open: no polarity to set
        with pytest.raises(ValueError, match="kiosk-v1 board takes no sensor_open_high"):
            profile_for("kiosk-v1", sensor_open_high=value)


def test_frame_gap_is_3_5_chars_of_11_bits_or_1_75_ms_above_19200_baud() -> None:
    assert frame_gap_s(9600) == pytest.approx(3.5 * 11 / 9600)  # 4.01 ms
    assert frame_gap_s(9600) == pytest.approx(0.00401, abs=1e-5)
    assert frame_gap_s(19200) == pytest.approx(3.5 * 11 / 19200)
    assert frame_gap_s(38400) == 0.00175
    assert frame_gap_s(115200) == 0.00175


def test_pymodbus_per_request_failures_are_demoted_to_debug() -> None:
    logger = logging.getLogger(PYMODBUS_LOGGER)
    noise = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 1, "No response received after 0 retries", (), None
    )
    other = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "something else", (), None)
    demote = DemotePymodbusNoise()
    old = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not demote.filter(noise)
        assert demote.filter(other) and other.levelno == logging.ERROR
        logger.setLevel(logging.DEBUG)
        assert demote.filter(noise) and noise.levelname == "DEBUG"
    finally:
        logger.setLevel(old)

"""The shipped device profiles, as the config flow offers them.

Thin layer over :mod:`.engine.register_map`: lists the profiles in ``engine/profiles/``
with their display names and reads the custom-map template. Everything here does
blocking file I/O; call it from an executor (``hass.async_add_executor_job``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .const import PROFILE_CUSTOM, PROFILE_DEMO
from .engine.register_map import (
    PROFILES_DIR,
    RegisterMapError,
    available_profiles,
    load_profile,
)

# offered first, in this order; other shipped profiles follow by name, the custom map last
_PREFERRED_ORDER = (PROFILE_DEMO, "sdm630", "sdm120")


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """One selectable profile."""

    profile_id: str
    name: str


def list_profiles() -> list[ProfileInfo]:
    """All usable profiles (the custom map always last). Blocking."""
    infos: list[ProfileInfo] = []
    for profile_id in available_profiles():
        try:
            profile = load_profile(profile_id, 1)
        except RegisterMapError:
            continue  # a broken shipped file is caught by the profile tests
        infos.append(ProfileInfo(profile_id, profile.name))
    if PROFILE_CUSTOM not in {info.profile_id for info in infos}:
        infos.append(ProfileInfo(PROFILE_CUSTOM, PROFILE_CUSTOM))

    def order(info: ProfileInfo) -> tuple[int, int, str]:
        if info.profile_id == PROFILE_CUSTOM:
            return (2, 0, "")
        if info.profile_id in _PREFERRED_ORDER:
            return (0, _PREFERRED_ORDER.index(info.profile_id), "")
        return (1, 0, info.name.lower())

    return sorted(infos, key=order)


def custom_template() -> str:
    """Return the example register map the custom-map field starts with. Blocking."""
    path = PROFILES_DIR / f"{PROFILE_CUSTOM}.yaml"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""

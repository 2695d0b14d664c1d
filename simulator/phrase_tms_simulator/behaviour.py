"""Delivery switches and scenarios: how the simulator misbehaves, globally or for one project.

Delivery switches are config fields (`PhraseSimulator.update_config`) that one project can
override (`PhraseSimulator.set_project_behaviour(project_uid, **switches)` or
`PATCH /_simulator/projects/{uid}/behaviour`):

- `webhooks_enabled`: False sends no webhook for the project, as Phrase does for a project whose
  settings exclude webhooks.
- `webhook_drop_rate`, `callback_drop_rate`: share (0 to 1) of deliveries that are never sent.
  A generator seeded with `random_seed` decides, once per copy.
- `webhook_copies`, `callback_copies`: how many times each event is sent (1 = once). The copies
  carry the same body and `eventUid`, and each copy is retried on its own.
- `webhook_reorder_seconds`, `callback_reorder_seconds`: deliveries are held for this window and
  then sent in a seeded shuffled order. A window that contains two or more deliveries never sends
  them in their original order. Retries skip the window.

Scenarios are the `scenarios` field, a JSON object from scenario name to its settings, set for
every project with `update_config(scenarios=...)` or for one project with
`set_project_behaviour(uid, scenarios=...)`. A project's scenario replaces the global one of the
same name. Example: `{"decline": {"targetLang": "fr", "workflowLevel": 1, "times": 1}}`.

Every scenario accepts the filters `targetLang`, `workflowLevel` and `filename` (a missing filter
matches everything) and `times`: how many matching events it changes per project (default 1;
null changes every match). Setting a project's scenarios again restarts its counts, and setting
the global scenarios restarts the counts of the global ones.

- `decline`: the simulated provider sets DECLINED instead of ACCEPTED. Assigning providers from
  the template sets the job part back to NEW, and its workflow continues.
- `reject`: the simulated reviewer sets REJECTED instead of COMPLETED.
- `cancel`: a project manager sets CANCELLED instead of the step named by `insteadOf`
  (ACCEPTED, the default, or COMPLETED).
- `importError`: the import of an uploaded or updated source file ends with importStatus ERROR
  and `errorMessage`, and its async request with `errorCode` (default IMPORT_FAILED). It takes
  no `workflowLevel` filter.
- `exportError`: the export's async request ends with `errorCode` (default EXPORT_FAILED) and
  `errorDesc`, and there is no file to download.
- `downloadInterrupted`: the download announces the full Content-Length, sends `fraction`
  (default 0.5) of the body and closes the connection. The async request id is used up.

Status scenarios act on the simulated linguist's automatic steps, so they need `auto_progress`.
Each status they set emits JOB_STATUS_CHANGED like any other change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import MAX_RETRIES
from .errors import InvalidConfig

if TYPE_CHECKING:
    from .config import SimulatorConfig

DELIVERY_SWITCHES = (
    "webhooks_enabled", "webhook_drop_rate", "webhook_copies", "webhook_reorder_seconds",
    "callback_drop_rate", "callback_copies", "callback_reorder_seconds",
)
PROJECT_SWITCHES = (*DELIVERY_SWITCHES, "scenarios")

MAX_COPIES = 10
MAX_REORDER_SECONDS = 3600.0

_FILTERS = frozenset({"targetLang", "workflowLevel", "filename", "times"})
SCENARIO_KEYS: dict[str, frozenset[str]] = {
    "decline": _FILTERS,
    "reject": _FILTERS,
    "cancel": _FILTERS | {"insteadOf"},
    "importError": frozenset({"targetLang", "filename", "times", "errorCode", "errorMessage"}),
    "exportError": _FILTERS | {"errorCode", "errorDesc"},
    "downloadInterrupted": _FILTERS | {"fraction"},
}
CANCEL_STEPS = ("ACCEPTED", "COMPLETED")


@dataclass(frozen=True)
class DeliverySwitches:
    """The delivery switches of one kind (webhook or callback) in force for one project."""

    drop_rate: float = 0.0
    copies: int = 1
    reorder_seconds: float = 0.0


def validate_behaviour_fields(config: SimulatorConfig) -> None:
    """Raise `InvalidConfig` when a delivery switch, the seed or a scenario is invalid."""
    for kind in ("webhook", "callback"):
        rate = getattr(config, f"{kind}_drop_rate")
        if not _is_number(rate) or not 0 <= rate <= 1:
            raise InvalidConfig(f"{kind}_drop_rate must be a number from 0 to 1, got {rate!r}")

        copies = getattr(config, f"{kind}_copies")
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
            raise InvalidConfig(f"{kind}_copies must be an integer from 1 to {MAX_COPIES}, "
                                f"got {copies!r}")

        window = getattr(config, f"{kind}_reorder_seconds")
        if not _is_number(window) or not 0 <= window <= MAX_REORDER_SECONDS:
            raise InvalidConfig(f"{kind}_reorder_seconds must be a number from 0 to "
                                f"{MAX_REORDER_SECONDS:g}, got {window!r}")

    delays = config.callback_retry_delays
    if not isinstance(delays, (list, tuple)) or len(delays) > MAX_RETRIES or not all(
        _is_number(d) and d >= 0 for d in delays
    ):
        raise InvalidConfig(
            f"callback_retry_delays must be a list of at most {MAX_RETRIES} numbers >= 0"
        )

    if isinstance(config.random_seed, bool) or not isinstance(config.random_seed, int):
        raise InvalidConfig(f"random_seed must be an integer, got {config.random_seed!r}")

    validate_scenarios(config.scenarios)


def validate_scenarios(scenarios: Any) -> None:
    """Raise `InvalidConfig` unless `scenarios` maps known scenario names to valid settings."""
    if not isinstance(scenarios, dict):
        raise InvalidConfig("scenarios must be an object of scenario name -> settings")

    for name, spec in scenarios.items():
        allowed = SCENARIO_KEYS.get(name)
        if allowed is None:
            raise InvalidConfig(f"unknown scenario {name!r}; use one of {', '.join(SCENARIO_KEYS)}")
        if not isinstance(spec, dict):
            raise InvalidConfig(f"scenario {name}: settings must be an object")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise InvalidConfig(f"scenario {name}: unknown key(s) {', '.join(unknown)}; "
                                f"allowed: {', '.join(sorted(allowed))}")
        _validate_scenario_values(name, spec)


def _validate_scenario_values(name: str, spec: dict[str, Any]) -> None:
    for key in ("targetLang", "filename", "errorCode", "errorMessage", "errorDesc"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key]):
            raise InvalidConfig(f"scenario {name}: {key} must be a non-empty string")

    level = spec.get("workflowLevel")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)
                              or not 1 <= level <= 15):
        raise InvalidConfig(f"scenario {name}: workflowLevel must be an integer from 1 to 15")

    times = spec.get("times", 1)
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise InvalidConfig(f"scenario {name}: times must be an integer >= 1, or null for always")

    if spec.get("insteadOf", "ACCEPTED") not in CANCEL_STEPS:
        raise InvalidConfig(f"scenario {name}: insteadOf must be one of {', '.join(CANCEL_STEPS)}")

    fraction = spec.get("fraction", 0.5)
    if not _is_number(fraction) or not 0 <= fraction < 1:
        raise InvalidConfig(f"scenario {name}: fraction must be a number >= 0 and < 1")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ProjectBehaviours:
    """Per-project overrides of the delivery switches and scenarios, and scenario use counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._overrides: dict[str, dict[str, Any]] = {}
        # (project uid, "project" or "global", scenario name) -> matches changed so far
        self._uses: dict[tuple[str, str, str], int] = {}

    def update(self, project_uid: str, switches: dict[str, Any],
               config: SimulatorConfig) -> dict[str, Any]:
        """Merge `switches` into the project's overrides (None removes one) and return them all."""
        unknown = sorted(set(switches) - set(PROJECT_SWITCHES))
        if unknown:
            raise InvalidConfig(f"unknown project switch(es): {', '.join(unknown)}; "
                                f"allowed: {', '.join(PROJECT_SWITCHES)}")

        with self._lock:
            merged = {**self._overrides.get(project_uid, {}), **switches}
            merged = {key: value for key, value in merged.items() if value is not None}
            # Validating a copy of the config checks each value exactly as the global field.
            config.replaced(**merged)
            self._overrides[project_uid] = merged
            if "scenarios" in switches:
                self._reset_uses(project_uid=project_uid, source="project")
            return dict(merged)

    def get(self, project_uid: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._overrides.get(project_uid, {}))

    def clear(self, project_uid: str) -> None:
        with self._lock:
            self._overrides.pop(project_uid, None)
            self._reset_uses(project_uid=project_uid, source="project")

    def reset_global_uses(self) -> None:
        """Restart the counts of the global scenarios, after they were set again."""
        with self._lock:
            self._reset_uses(source="global")

    def _reset_uses(self, *, project_uid: str | None = None, source: str) -> None:
        for key in [k for k in self._uses
                    if k[1] == source and (project_uid is None or k[0] == project_uid)]:
            del self._uses[key]

    def setting(self, project_uid: str, name: str, config: SimulatorConfig) -> Any:
        """Return the project's value of switch `name`, or the config's when not overridden."""
        with self._lock:
            overrides = self._overrides.get(project_uid, {})
            return overrides[name] if name in overrides else getattr(config, name)

    def delivery_switches(self, project_uid: str, kind: str,
                          config: SimulatorConfig) -> DeliverySwitches:
        """Return the `kind` ("webhook" or "callback") switches in force for the project."""
        return DeliverySwitches(
            drop_rate=self.setting(project_uid, f"{kind}_drop_rate", config),
            copies=self.setting(project_uid, f"{kind}_copies", config),
            reorder_seconds=self.setting(project_uid, f"{kind}_reorder_seconds", config),
        )

    def take_scenario(self, project_uid: str, name: str, config: SimulatorConfig, *,
                      target_langs: list[str] | None = None, workflow_level: int | None = None,
                      filename: str | None = None,
                      planned_status: str | None = None) -> dict[str, Any] | None:
        """Return scenario `name` when it matches and has uses left, and count one use.

        `planned_status` is the status the simulated linguist would set. A cancel scenario
        matches only when it equals the scenario's `insteadOf`.
        """
        with self._lock:
            project_scenarios = self._overrides.get(project_uid, {}).get("scenarios", {})
            if name in project_scenarios:
                spec, source = project_scenarios[name], "project"
            elif name in config.scenarios:
                spec, source = config.scenarios[name], "global"
            else:
                return None

            if "targetLang" in spec and spec["targetLang"] not in (target_langs or []):
                return None
            if "workflowLevel" in spec and spec["workflowLevel"] != workflow_level:
                return None
            if "filename" in spec and spec["filename"] != filename:
                return None
            if name == "cancel" and spec.get("insteadOf", "ACCEPTED") != planned_status:
                return None

            key = (project_uid, source, name)
            times = spec.get("times", 1)
            if times is not None and self._uses.get(key, 0) >= times:
                return None
            self._uses[key] = self._uses.get(key, 0) + 1
            return dict(spec)

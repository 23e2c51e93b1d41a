"""The ``--pkcs11-*`` options: sign with a key in a PKCS#11 token instead of a key file.

One set of options names the token key (node/hsm.py ``Pkcs11Key``); each may also
come from an environment variable (``COMITY_PKCS11_MODULE`` and so on), so an
operator sets the module and token once for a shell. A command given
``--pkcs11-label`` signs through the token; without it, it reads its key file
(``--key`` / ``--admin-key``) as before. The PIN is never an option: a file
(``--pkcs11-pin-file``, mode 0600) or a variable (``--pkcs11-pin-env``), so it is
never in the shell history or the process list.

The options do not change the commands' parameters: click stores them in the
context (``expose_value=False``) and ``key_signer`` reads them back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from ledger.errors import ComityError
from ledger.keys import KeySigner, load_signing_key
from node.hsm import Pkcs11Key, open_signer

META = "comity.pkcs11"
F = TypeVar("F", bound=Callable[..., Any])

#: (option, its field in Pkcs11Key, click type, help)
OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--pkcs11-module", "module", click.Path(path_type=Path), "the token's PKCS#11 library"),
    ("--pkcs11-token", "token", str, "the token's label (or --pkcs11-slot)"),
    ("--pkcs11-slot", "slot", click.IntRange(0), "the token's slot id"),
    ("--pkcs11-label", "label", str, "CKA_LABEL of the key pair in the token"),
    ("--pkcs11-pin-file", "pin_file", click.Path(path_type=Path), "file of the PIN (mode 0600)"),
    ("--pkcs11-pin-env", "pin_env", str, "environment variable that holds the PIN"),
)


def _keep(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None and param.name is not None:
        ctx.meta.setdefault(META, {})[param.name.removeprefix("pkcs11_")] = value


def pkcs11_options(command: F) -> F:
    """Add the ``--pkcs11-*`` options to ``command``."""
    for flag, name, type_, help_ in reversed(OPTIONS):
        command = click.option(
            flag,
            f"pkcs11_{name}",  # never a command's own parameter (``--token`` is a bearer token)
            type=type_,
            default=None,
            envvar=f"COMITY_{flag[2:].upper().replace('-', '_')}",
            expose_value=False,
            callback=_keep,
            help=help_,
        )(command)
    return command


def given() -> bool:
    """True if this command was told to use a token key (``--pkcs11-label``)."""
    return "label" in click.get_current_context().meta.get(META, {})


def pkcs11_key() -> Pkcs11Key:
    """The token key the ``--pkcs11-*`` options name; exits 2 naming what is wrong."""
    fields = dict(click.get_current_context().meta.get(META, {}))
    fields.setdefault("module", None)
    try:
        return Pkcs11Key.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"--pkcs11-{'.'.join(str(p) for p in e['loc']).replace('_', '-') or 'options'}: "
            f"{e['msg']}"
            for e in exc.errors()
        )
        _fail(f"the --pkcs11-* options are incomplete: {problems}")
        raise


def key_signer(key_path: Path | None, option: str) -> KeySigner:
    """The signer a command uses: the token key if ``--pkcs11-label`` is given, else
    the key file of ``option``; exactly one of the two."""
    if given() and key_path is not None:
        _fail(f"give {option} or --pkcs11-label, not both")
    try:
        if given():
            return open_signer(pkcs11_key())
        if key_path is None:
            _fail(f"give {option} (a key file) or --pkcs11-label (a key in a token)")
            raise AssertionError  # _fail exits
        return load_signing_key(key_path)
    except ComityError as exc:
        _fail(str(exc))
        raise


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)

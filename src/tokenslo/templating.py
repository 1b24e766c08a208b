"""One Jinja environment factory for every renderer (dashboards, reports).

Each renderer's templates ship as package data in its own package's ``templates/``
directory and can be overridden by a user directory searched first, so a team can
change one template without forking the package. The delimiters are a parameter because
each output format collides with different syntax: Grafana legends use
``{{label}}``, so dashboard templates use ``[[ ]]``/``[% %]`` instead of ever
wrapping text in ``{% raw %}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from tokenslo.errors import InputError


@dataclass(frozen=True)
class Delimiters:
    block: tuple[str, str] = ("{%", "%}")
    variable: tuple[str, str] = ("{{", "}}")
    comment: tuple[str, str] = ("{#", "#}")


JINJA_DEFAULT = Delimiters()
# Grafana's legend/alias syntax is ``{{label}}``: keep it out of Jinja's way.
BRACKETS = Delimiters(block=("[%", "%]"), variable=("[[", "]]"), comment=("[#", "#]"))


def environment(
    templates: Path,
    override: Path | str | None = None,
    *,
    delimiters: Delimiters = JINJA_DEFAULT,
    autoescape: bool = False,
    filters: Mapping[str, Callable] | None = None,
) -> jinja2.Environment:
    """Environment loading the ``templates`` directory with ``override`` searched first.

    ``StrictUndefined`` turns a misspelt variable into an error instead of an
    empty string in the output. ``autoescape`` is for HTML renderers.
    """
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        path = Path(override)
        if not path.is_dir():
            raise InputError(
                f"template directory {str(path)!r} does not exist", field="--templates"
            )
        loaders.append(jinja2.FileSystemLoader(str(path)))
    loaders.append(jinja2.FileSystemLoader(str(templates)))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        block_start_string=delimiters.block[0],
        block_end_string=delimiters.block[1],
        variable_start_string=delimiters.variable[0],
        variable_end_string=delimiters.variable[1],
        comment_start_string=delimiters.comment[0],
        comment_end_string=delimiters.comment[1],
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters or {})
    return env


def template_error(exc: jinja2.TemplateError, name: str) -> InputError:
    """A Jinja failure as bad input naming the template file and line (exit 2)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return InputError(
            f"template syntax error: {exc.message}", file=exc.filename or name, line=exc.lineno
        )
    if isinstance(exc, jinja2.TemplateNotFound):
        return InputError(f"template not found: {exc.name}", file=name)
    return InputError(f"template error: {exc}", file=name)

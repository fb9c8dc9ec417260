"""The Jinja2 environment, template overrides and template hashes.

One environment factory (``environment``): the workspace's ``templates/`` is searched
before the templates shipped in the package, so a file named like a built-in template
overrides it and a report's ``template: NAME`` picks ``NAME.html.j2`` / ``NAME.md.j2``.
``StrictUndefined`` turns a typo in a template into an error. Autoescaping is on for every
template except Markdown ones (``*.md.j2``, ``*.txt.j2``), because group values come from
the API; Markdown templates escape with the ``md`` and ``md_cell`` filters instead.
Jinja2 is imported inside the functions that need it, so planning does not pay for it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.errors import RenderError
from casereport.render.filters import FILTERS

if TYPE_CHECKING:
    import jinja2

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _template_files(templates_dir: Path | None) -> list[Path]:
    folders = [BUILTIN_TEMPLATES]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, templates_dir)
    files: list[Path] = []
    for folder in folders:
        files += sorted(p for p in folder.rglob("*.j2") if p.is_file())
    return files


def template_hashes(templates_dir: Path | None, names: Iterable[str]) -> dict[str, str]:
    """A hash per template name of every template file it could use.

    Templates include and extend each other, so any change to any template file
    re-renders every report (cheap next to guessing the include graph wrong).
    """
    digest = hashlib.sha256()
    for path in _template_files(templates_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    shared = digest.hexdigest()
    return {
        name: hashlib.sha256(f"{name}\0{shared}".encode()).hexdigest()
        for name in sorted(set(names))
    }


def _autoescape(name: str | None) -> bool:
    # On unless the template writes Markdown or text: safe by default for new HTML/SVG names.
    return name is None or not name.endswith((".md.j2", ".md", ".txt.j2", ".txt"))


@functools.cache
def _environment_class() -> type[jinja2.Environment]:
    import jinja2

    class Environment(jinja2.Environment):
        """``agg.total`` looks up the key of a dict first.

        Jinja2 tries the attribute first, so ``row.values`` would be ``dict.values`` and
        every other lookup would raise and catch an AttributeError first (slow).
        """

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    return Environment


def environment(templates_dir: Path | None) -> jinja2.Environment:
    """The one Jinja2 environment: workspace templates first, then the built-in ones."""
    import jinja2

    folders = [str(BUILTIN_TEMPLATES)]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, str(templates_dir))
    env = _environment_class()(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


def render_template(env: jinja2.Environment, template_name: str, context: Mapping[str, Any]) -> str:
    """One template rendered; every Jinja2 failure becomes a one-line RenderError."""
    import jinja2

    try:
        return env.get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name} not found in the workspace templates/ or the built-in ones; "
            f"create it or fix the report's `template:`"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or template_name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        # Runtime errors (an undefined name under StrictUndefined) carry no position.
        raise RenderError(f"{template_name}: {exc}") from None
    except UnicodeDecodeError as exc:  # a template file (this one or one it uses)
        raise RenderError(
            f"{template_name}: a template is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); save the templates as UTF-8"
        ) from None

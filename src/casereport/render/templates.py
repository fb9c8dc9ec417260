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
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.errors import RenderError
from casereport.render.filters import FILTERS
from casereport.settings import DEFAULT_PDF_PAGE_SIZE, DEFAULT_SITE_TITLE, did_you_mean

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


def template_hashes(
    templates_dir: Path | None,
    names: Iterable[str],
    *,
    site_title: str = DEFAULT_SITE_TITLE,
    pdf_page_size: str = DEFAULT_PDF_PAGE_SIZE,
) -> dict[str, str]:
    """A hash per template name of every template file it could use, and of the site
    settings every page shows (``site_title``, ``pdf_page_size``).

    Templates include and extend each other, so any change to any template file
    re-renders every report (cheap next to guessing the include graph wrong); so does a
    new site title or page size. Default settings add nothing to the hash: a workspace
    that never sets them keeps the hashes it had.
    """
    digest = hashlib.sha256()
    if (site_title, pdf_page_size) != (DEFAULT_SITE_TITLE, DEFAULT_PDF_PAGE_SIZE):
        digest.update(f"settings\0{site_title}\0{pdf_page_size}\0".encode())
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


def environment(
    templates_dir: Path | None,
    *,
    site_title: str = DEFAULT_SITE_TITLE,
    pdf_page_size: str = DEFAULT_PDF_PAGE_SIZE,
) -> jinja2.Environment:
    """The one Jinja2 environment: workspace templates first, then the built-in ones.

    The site settings every page shows (``site_title``, and ``pdf_page_size`` for the
    print stylesheet's ``@page``) are the environment's globals: every template sees them
    without each context repeating them.
    """
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
    env.globals.update(site_title=site_title, pdf_page_size=pdf_page_size)
    return env


class TemplateProblem(RenderError):
    """A template that cannot render: where (its file and line, when known) and why."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file, self.line, self.problem = file, line, message
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


def render_template(env: jinja2.Environment, template_name: str, context: Mapping[str, Any]) -> str:
    """One template rendered; every Jinja2 failure becomes a one-line RenderError (a
    :class:`TemplateProblem` when a template is at fault), naming its file and line."""
    import jinja2

    try:
        return env.get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name} not found in the workspace templates/ or the built-in ones; "
            f"create it or fix the report's `template:`"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        file = _shown_path(exc.filename) if exc.filename else template_name
        raise TemplateProblem(file, exc.lineno, f"error: {exc.message}") from None
    except jinja2.TemplateError as exc:
        # Runtime errors (an undefined name under StrictUndefined): Jinja2 puts the
        # template's file and line in the traceback's frames.
        file, line = _template_frame(exc.__traceback__, template_name)
        raise TemplateProblem(file, line, f"error: {exc}{_name_hint(exc, context)}") from None
    except UnicodeDecodeError as exc:  # a template file (this one or one it uses)
        raise RenderError(
            f"{template_name}: a template is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); save the templates as UTF-8"
        ) from None


def _shown_path(filename: str) -> str:
    """A template's path as the user knows it: relative to the working directory if under
    it (``templates/report.md.j2``), else as it is."""
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return filename


def _template_frame(traceback: Any, template_name: str) -> tuple[str, int | None]:
    """The innermost template file and line in ``traceback`` (Jinja2 rewrites template
    frames to point at them), or the template's name without a line."""
    found: tuple[str, int | None] = (template_name, None)
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (_shown_path(filename), traceback.tb_lineno)
        traceback = traceback.tb_next
    return found


_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined|has no attribute '([^']+)'")


def _name_hint(exc: Exception, context: Mapping[str, Any]) -> str:
    """A "did you mean" for an undefined name, from the names the context holds."""
    match = _UNDEFINED_NAME.search(str(exc))
    if match is None:
        return ""
    name = match.group(1) or match.group(2)
    # Not the name itself: another mapping may have it (``links.html``, not ``files.html``).
    return did_you_mean(name, _context_names(context) - {name}, cutoff=0.7)


def _context_names(value: Any, depth: int = 0) -> set[str]:
    """Every key of the context's mappings, a few levels down (rows, aggregations, ...)."""
    names: set[str] = set()
    if depth > 4:
        return names
    if isinstance(value, Mapping):
        for key, item in value.items():
            names.add(str(key))
            names |= _context_names(item, depth + 1)
    elif isinstance(value, (list, tuple)) and value:
        names |= _context_names(value[0], depth + 1)
    return names

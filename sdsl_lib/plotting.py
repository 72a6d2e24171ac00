r"""One place for the look of every figure: style, colours, tick labels and byte-stable saving.

The notebooks call :func:`set_style` once, take colours from :func:`family_colour` /
:func:`model_colour` (a fixed colour per model family, so OPT is the same blue in every figure), label
size axes with :func:`count_axis` (1e9 shown as "1B") and write files only through :func:`save`, which
strips the timestamps and software versions that PNG and PDF writers embed by default: rerunning a
notebook therefore rewrites identical bytes, and ``git status`` stays clean.

Only presentation lives here; every number plotted comes from the laws in ``sdsl_lib``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib as mpl
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.ticker import FuncFormatter

from sdsl_lib.io import atomic_write_bytes

__all__ = [
    "FAMILIES",
    "FAMILY_COLOURS",
    "DPI",
    "set_style",
    "family_of",
    "family_colour",
    "model_colour",
    "sequential_colours",
    "format_count",
    "count_formatter",
    "count_axis",
    "plain_log_axis",
    "save",
]

#: Model families of the study, in the order legends list them.
FAMILIES = ("OPT", "Qwen1.5", "Qwen2.5", "LLaMA-3", "Seed-OSS")

# seaborn's "colorblind" palette (Wong 2011), written out so the colours do not depend on the
# seaborn version and a family keeps its colour in every figure.
_COLORBLIND = [
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
]

#: Fixed colour per model family.
FAMILY_COLOURS = dict(zip(FAMILIES, _COLORBLIND))

#: Raster resolution of every PNG (dots per inch): fixed so that reruns give identical bytes.
DPI = 150

_FAMILY_PATTERNS = (
    (re.compile(r"^opt", re.I), "OPT"),
    (re.compile(r"^qwen1\.5", re.I), "Qwen1.5"),
    (re.compile(r"^qwen2\.5", re.I), "Qwen2.5"),
    (re.compile(r"^llama[- ]?3", re.I), "LLaMA-3"),
    (re.compile(r"^seed", re.I), "Seed-OSS"),
)


def set_style() -> None:
    """Apply the house style: seaborn ``paper`` context, ``ticks`` style, ``colorblind`` palette.

    Also pins the rcParams that change a saved file's bytes (font, DPI, face colour, PDF font type,
    hatch and path simplification), so that figures do not depend on the backend that drew them
    (the notebook's inline backend or Agg).
    """
    import seaborn as sns

    sns.set_theme(context="paper", style="ticks", palette="colorblind")
    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": DPI,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.bbox": "tight",
            "savefig.pad_inches": 0.05,
            "font.family": "DejaVu Sans",
            "pdf.fonttype": 42,  # embed TrueType: text stays selectable in the PDF
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "svg.hashsalt": "sdsl",
        }
    )


def family_of(model: str) -> str:
    """The family of a model name as the paper spells it (``"LLaMa3.1-70B"`` -> ``"LLaMA-3"``).

    Examples
    --------
    >>> family_of("Qwen1.5-0.5B"), family_of("LLaMa3.1-70B"), family_of("Seed-OSS-36B")
    ('Qwen1.5', 'LLaMA-3', 'Seed-OSS')
    """
    for pattern, family in _FAMILY_PATTERNS:
        if pattern.search(model):
            return family
    raise ValueError(f"model {model!r} belongs to no known family; known families: {', '.join(FAMILIES)}")


def family_colour(family: str) -> str:
    """The fixed colour (hex) of a model family, or of the family of a model name."""
    if family not in FAMILY_COLOURS:
        family = family_of(family)
    return FAMILY_COLOURS[family]


def model_colour(model: str, rank: int = 0, n_in_family: int = 1) -> tuple[float, float, float]:
    """The family colour shaded by a model's size rank within its family (0 = smallest, lightest).

    Examples
    --------
    >>> model_colour("OPT-66B", 2, 3) == mcolors.to_rgb(FAMILY_COLOURS["OPT"])
    True
    """
    base = np.array(mcolors.to_rgb(family_colour(model)))
    if n_in_family <= 1:
        return tuple(base)
    # Mix with white: the smallest model at 45% of the way to white, the largest at full colour.
    t = 0.45 * (1.0 - rank / (n_in_family - 1))
    return tuple((1.0 - t) * base + t * np.ones(3))


def sequential_colours(n: int, name: str = "viridis") -> list[tuple[float, float, float]]:
    """``n`` colours from a perceptually uniform colormap, for curves indexed by a size or data grid."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    cmap = mpl.colormaps[name]
    return [tuple(cmap(v)[:3]) for v in np.linspace(0.05, 0.85, n)]


def format_count(value: float, _pos=None) -> str:
    """Format a count with a K/M/B/T suffix: 1.25e8 -> ``"125M"``, 1e9 -> ``"1B"``.

    Examples
    --------
    >>> [format_count(v) for v in (0, 950, 1.25e8, 1e9, 2.5e9, 1.8e13)]
    ['0', '950', '125M', '1B', '2.5B', '18T']
    """
    v = float(value)
    if v == 0:
        return "0"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


#: Tick formatter for axes in raw counts (parameters, tokens).
count_formatter = FuncFormatter(format_count)


def count_axis(ax, axis: str = "x", subs=(1.0,)) -> None:
    """Label an axis holding raw counts with K/M/B/T suffixes.

    On a log axis, major ticks sit at ``subs`` times the powers of ten (pass ``(1, 2, 5)`` for an axis
    spanning about one decade, which would otherwise show a single label); minor ticks stay unlabelled.
    """
    from matplotlib.ticker import LogLocator

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    if (ax.get_xscale() if axis == "x" else ax.get_yscale()) == "log":
        target.set_major_locator(LogLocator(base=10.0, subs=subs))
    target.set_major_formatter(count_formatter)
    target.set_minor_formatter(FuncFormatter(lambda v, p: ""))


def plain_log_axis(ax, axis: str = "y", minor_subs=None) -> None:
    """Label a log axis with plain numbers (``20``, ``0.05``) instead of powers like 2x10^1.

    Every minor tick is labelled by default; ``minor_subs`` (e.g. ``(2, 5)``) labels only the minor
    ticks at those multiples of a power of ten, which keeps an axis spanning two decades legible. An
    axis spanning less than a decade keeps every minor label (it would otherwise show one or two).
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    plain = FuncFormatter(lambda v, _p: f"{v:g}")
    target.set_major_formatter(plain)
    if minor_subs is None:
        target.set_minor_formatter(plain)
        return
    subs = np.asarray(minor_subs, dtype=float)

    def minor(v, _p):
        low, high = sorted(target.get_view_interval())
        if v <= 0:
            return ""
        if low > 0 and high / low < 10.0:
            return f"{v:g}"
        mantissa = v / 10.0 ** np.floor(np.log10(v) + 1e-12)
        return f"{v:g}" if np.any(np.isclose(mantissa, subs, rtol=1e-6)) else ""

    target.set_minor_formatter(FuncFormatter(minor))


def save(fig, name: str, outdir, formats=("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``<outdir>/<name>.png`` and ``.pdf`` with fixed metadata; return the paths.

    PNG: :data:`DPI` dots per inch, no ``Software`` text chunk. PDF: no creator, producer or
    creation date. With those removed the bytes depend only on the figure's content, so a rerun that
    draws the same figure produces identical files. Files are written atomically and left untouched
    when their bytes are unchanged (so their modification times say when the content last changed).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File stem, named after the paper's figure (``"fig2a_throughput_vs_draft_opt"``).
    outdir : str or Path
        Folder (created if needed).
    formats : sequence of {"png", "pdf"}

    Returns
    -------
    list of Path
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    metadata = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}
    outdir = Path(outdir)
    paths = []
    for fmt in formats:
        if fmt not in metadata:
            raise ValueError(f"formats must be among {tuple(metadata)}, got {fmt!r}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata[fmt])
        data = buffer.getvalue()
        path = outdir / f"{name}.{fmt}"
        if not (path.exists() and path.read_bytes() == data):
            atomic_write_bytes(path, data)
        paths.append(path)
    return paths

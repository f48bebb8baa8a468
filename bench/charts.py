"""PNG charts of the benchmark results (matplotlib, Agg backend: no display needed).

Each function takes plain data (``{lib: [(x, y), ...]}``) and writes one PNG;
``bench/run.py`` decides what to plot.  Missing points (errors, skipped
libraries) are simply left out of a line.
"""

from __future__ import annotations

from pathlib import Path

#: One fixed colour and marker per library, the same in every chart.
STYLE = {
    "greenweave": ("tab:green", "o"),
    "gevent": ("tab:blue", "s"),
    "eventlet": ("tab:orange", "^"),
    "uvloop": ("tab:purple", "D"),
    "gevent-nodelay": ("tab:cyan", "v"),
}


def available() -> str | None:
    """None if matplotlib can be used, else the reason it can't."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception as exc:  # ImportError, or a broken backend
        return f"matplotlib unavailable ({type(exc).__name__}: {exc}); pip install matplotlib"
    return None


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lines(ax, series: dict[str, list[tuple[float, float]]], labels: dict[str, str]) -> None:
    for lib, points in series.items():
        points = sorted(p for p in points if p[1] is not None)
        if not points:
            continue
        colour, marker = STYLE.get(lib, (None, "x"))
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker=marker, color=colour, label=labels.get(lib, lib))
    ax.set_xscale("log")
    xs = sorted({x for points in series.values() for x, y in points if y is not None})
    if xs:  # ticks at the measured points, as plain numbers
        ax.set_xticks(xs, [f"{x:,.0f}" for x in xs])
        ax.xaxis.set_minor_locator(_plt().NullLocator())
    ax.grid(True, which="both", alpha=0.3)


def _save(fig, path: Path, footer: str) -> None:
    fig.text(0.01, 0.005, footer, fontsize=7, color="0.4", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def line_chart(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    series: dict[str, list[tuple[float, float]]],
    labels: dict[str, str],
    footer: str,
    log_y: bool = False,
    floor: tuple[float, str] | None = None,
) -> None:
    """One panel: y against x (log x axis), one line per library."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _lines(ax, series, labels)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    if floor is not None:
        ax.axhline(floor[0], color="0.5", linestyle="--", linewidth=1, label=floor[1])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    _save(fig, path, footer)


def http_chart(
    path: Path,
    panels: dict[str, dict[str, dict[str, list[tuple[float, float]]]]],
    labels: dict[str, str],
    footer: str,
) -> None:
    """A grid: one column per mode (keep-alive, close), rows requests/s and p99 latency.

    ``panels[mode][metric][lib]`` is a list of (connections, value); metric is
    ``"rps"`` or ``"p99"``.
    """
    plt = _plt()
    modes = list(panels)
    fig, axes = plt.subplots(2, len(modes), figsize=(5.5 * len(modes), 7), squeeze=False)
    for col, mode in enumerate(modes):
        top, bottom = axes[0][col], axes[1][col]
        _lines(top, panels[mode]["rps"], labels)
        top.set_ylim(bottom=0)
        top.set_title(f"hello-world WSGI, {mode}")
        top.set_ylabel("requests/s (higher is better)")
        _lines(bottom, panels[mode]["p99"], labels)
        bottom.set_yscale("log")
        bottom.set_ylabel("p99 latency, ms (lower is better)")
        bottom.set_xlabel("concurrent connections (wrk)")
        top.legend()
    _save(fig, path, footer)


def bar_chart(
    path: Path,
    title: str,
    ylabel: str,
    groups: list[str],
    values: dict[str, list[float | None]],
    labels: dict[str, str],
    footer: str,
) -> None:
    """Grouped bars: one group per entry of ``groups``, one bar per library."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    libs = [lib for lib, vals in values.items() if any(v is not None for v in vals)]
    width = 0.8 / max(1, len(libs))
    for i, lib in enumerate(libs):
        colour, _marker = STYLE.get(lib, (None, "x"))
        xs = [g + (i - (len(libs) - 1) / 2) * width for g in range(len(groups))]
        ys = [v if v is not None else 0 for v in values[lib]]
        bars = ax.bar(xs, ys, width, color=colour, label=labels.get(lib, lib))
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in ys], fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    _save(fig, path, footer)


def ratio_chart(path: Path, title: str, rows: list[tuple[str, float]], footer: str) -> None:
    """Horizontal bars of greenweave/gevent time ratios, with the 1.0 line marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.4))
    names = [name for name, _ in rows][::-1]
    ratios = [ratio for _, ratio in rows][::-1]
    colours = ["tab:green" if r <= 1 else "tab:red" for r in ratios]
    bars = ax.barh(names, ratios, color=colours)
    ax.bar_label(bars, labels=[f"{r:.2f}" for r in ratios], fontsize=7, padding=2)
    ax.axvline(1.0, color="0.3", linewidth=1)
    ax.set_title(title)
    ax.set_xlabel("greenweave time / gevent time (below 1: greenweave faster)")
    ax.grid(True, axis="x", alpha=0.3)
    _save(fig, path, footer)

#!/usr/bin/env python3
"""Draw p99 (and p50, p99.9) delivery latency against offered load from an imbench CSV.

    scripts/bench-chart.py docs/bench/fanout.csv docs/bench/fanout.png [--title TEXT]

The CSV has the columns offered_rate,p50_ms,p99_ms,p999_ms,deliveries_per_s (a header
line is optional). Uses matplotlib when it is installed (pip install matplotlib); otherwise
draws the same chart with the standard library only (zlib + struct, a built-in 5x7 font).
The latency axis is logarithmic when the values span more than two decades (an overloaded
rate next to an idle one), unless --linear is given.
"""

import argparse
import csv
import math
import struct
import sys
import zlib

COLUMNS = ["offered_rate", "p50_ms", "p99_ms", "p999_ms", "deliveries_per_s"]


def read_rows(path):
    rows = []
    with open(path, newline="") as handle:
        for record in csv.reader(handle):
            if not record or record[0].strip().startswith("#"):
                continue
            try:
                values = [float(field) for field in record[: len(COLUMNS)]]
            except ValueError:
                continue  # header
            if len(values) == len(COLUMNS):
                rows.append(dict(zip(COLUMNS, values)))
    rows.sort(key=lambda row: row["offered_rate"])
    return rows


def short(value):
    """1234567 -> 1.23M, 45600 -> 45.6k."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def wants_log(rows, linear):
    values = [row[key] for row in rows for key in ("p50_ms", "p99_ms", "p999_ms") if row[key] > 0]
    return not linear and bool(values) and max(values) / min(values) > 100


def decade_ticks(low, high):
    """Powers of ten from below `low` to above `high`."""
    start = math.floor(math.log10(low))
    stop = math.ceil(math.log10(high))
    return [10.0 ** exponent for exponent in range(start, stop + 1)]


def nice_ticks(low, high, count=5):
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


# ---------------------------------------------------------------- matplotlib


def draw_matplotlib(rows, output, title, log):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [row["offered_rate"] for row in rows]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    ax.plot(x, [row["p50_ms"] for row in rows], "o-", color="#8fb8de", label="p50")
    ax.plot(x, [row["p99_ms"] for row in rows], "o-", color="#d62728", linewidth=2.5, label="p99")
    ax.plot(x, [row["p999_ms"] for row in rows], "o--", color="#9467bd", label="p99.9")
    for row in rows:
        ax.annotate(f"{short(row['deliveries_per_s'])}/s", (row["offered_rate"], row["p99_ms"]),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8, color="#555555")
    ax.set_xlabel("offered rate (messages/s through the API)")
    ax.set_ylabel("delivery latency (ms)")
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
        ax.set_ylabel("delivery latency (ms, log scale)")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", title="labels: deliveries/s achieved", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(output)


# ---------------------------------------------------------------- standard library only

FONT = {  # 5x7, one int per row, leftmost pixel = 0x10
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E), "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F), "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02), "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E), "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E), "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11), "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E), "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F), "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F), "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E), "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11), "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11), "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E), "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D), "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E), "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E), "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A), "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04), "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C), "-": (0, 0, 0, 0x1F, 0, 0, 0), "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02), ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0), ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0), "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0), " ": (0, 0, 0, 0, 0, 0, 0),
}


class Canvas:
    def __init__(self, width, height, background=(255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def dot(self, x, y, color):
        if 0 <= x < self.width and 0 <= y < self.height:
            offset = (y * self.width + x) * 3
            self.pixels[offset:offset + 3] = bytes(color)

    def rect(self, x0, y0, x1, y1, color):
        for y in range(max(0, y0), min(self.height, y1 + 1)):
            for x in range(max(0, x0), min(self.width, x1 + 1)):
                self.dot(x, y, color)

    def line(self, x0, y0, x1, y1, color, width=1, dash=0):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        half = width // 2
        for step in range(steps + 1):
            if dash and (step // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * step / steps)
            y = round(y0 + (y1 - y0) * step / steps)
            self.rect(x - half, y - half, x - half + width - 1, y - half + width - 1, color)

    def disc(self, cx, cy, radius, color):
        for y in range(-radius, radius + 1):
            for x in range(-radius, radius + 1):
                if x * x + y * y <= radius * radius:
                    self.dot(cx + x, cy + y, color)

    def text(self, x, y, string, color=(0, 0, 0), scale=2, anchor="left", vertical=False):
        """Draws `string` (upper-cased); anchor is left, center or right of the run."""
        string = string.upper()
        length = len(string) * 6 * scale
        if anchor == "center":
            shift = length // 2
        elif anchor == "right":
            shift = length
        else:
            shift = 0
        for index, char in enumerate(string):
            rows = FONT.get(char, FONT[" "])
            for row, bits in enumerate(rows):
                for column in range(5):
                    if bits & (0x10 >> column):
                        along = index * 6 * scale + column * scale - shift
                        for dy in range(scale):
                            for dx in range(scale):
                                if vertical:
                                    self.dot(x + row * scale + dy, y - along - dx, color)
                                else:
                                    self.dot(x + along + dx, y + row * scale + dy, color)

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.pixels[y * self.width * 3:(y + 1) * self.width * 3])
                       for y in range(self.height))

        def chunk(kind, data):
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def draw_plain(rows, output, title, log):
    width, height = 1000, 620
    left, right, top, bottom = 110, 40, 70, 90
    canvas = Canvas(width, height)
    xs = [row["offered_rate"] for row in rows]
    highest = max(max(row["p999_ms"], row["p99_ms"], row["p50_ms"]) for row in rows)
    x_ticks = nice_ticks(0, max(xs) * 1.05)
    x_max = x_ticks[-1]
    if log:
        lowest = min(row[key] for row in rows for key in ("p50_ms", "p99_ms", "p999_ms") if row[key] > 0)
        y_ticks = decade_ticks(lowest, highest)
        y_low, y_high = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    else:
        y_ticks = nice_ticks(0, highest * 1.1 if highest > 0 else 1)
        y_low, y_high = 0.0, y_ticks[-1]

    def px(value):
        return round(left + (width - left - right) * value / x_max)

    def py(value):
        if log:
            value = math.log10(max(value, y_ticks[0]))
        return round(height - bottom - (height - top - bottom) * (value - y_low) / (y_high - y_low))

    grid, axis = (228, 228, 228), (60, 60, 60)
    for tick in y_ticks:
        canvas.line(left, py(tick), width - right, py(tick), grid)
        canvas.text(left - 10, py(tick) - 7, f"{tick:g}", axis, anchor="right")
    for tick in x_ticks:
        canvas.line(px(tick), top, px(tick), height - bottom, grid)
        canvas.text(px(tick), height - bottom + 10, short(tick), axis, anchor="center")
    canvas.line(left, height - bottom, width - right, height - bottom, axis, width=2)
    canvas.line(left, top, left, height - bottom, axis, width=2)
    canvas.text(width // 2, 20, title, (0, 0, 0), anchor="center")
    canvas.text((left + width - right) // 2, height - 45, "offered rate (messages/s through the API)", axis,
                anchor="center")
    canvas.text(25, (top + height - bottom) // 2, "latency (ms, log scale)" if log else "latency (ms)", axis,
                anchor="center", vertical=True)

    series = [("p50", "p50_ms", (143, 184, 222), 2, 0), ("p99", "p99_ms", (214, 39, 40), 4, 0),
              ("p99.9", "p999_ms", (148, 103, 189), 2, 6)]
    for name, key, color, thickness, dash in series:
        points = [(px(row["offered_rate"]), py(row[key])) for row in rows]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            canvas.line(x0, y0, x1, y1, color, width=thickness, dash=dash)
        for x, y in points:
            canvas.disc(x, y, thickness + 2, color)
    for row in rows:
        canvas.text(px(row["offered_rate"]), py(row["p99_ms"]) - 24, short(row["deliveries_per_s"]) + "/s",
                    (110, 110, 110), anchor="center")
    legend_x = left + 20
    for index, (name, _, color, thickness, _) in enumerate(series):
        y = top + 10 + index * 24
        canvas.line(legend_x, y + 7, legend_x + 30, y + 7, color, width=thickness)
        canvas.text(legend_x + 40, y, name, (0, 0, 0))
    canvas.text(legend_x, top + 10 + 3 * 24, "labels: deliveries/s achieved", (110, 110, 110))
    with open(output, "wb") as handle:
        handle.write(canvas.png())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv")
    parser.add_argument("png")
    parser.add_argument("--title", default="ImServer fan-out: latency vs offered load")
    parser.add_argument("--plain", action="store_true", help="use the standard-library renderer even with matplotlib")
    parser.add_argument("--linear", action="store_true", help="linear latency axis even for a wide range")
    args = parser.parse_args()
    rows = read_rows(args.csv)
    if not rows:
        sys.exit(f"{args.csv}: no data rows ({','.join(COLUMNS)})")
    log = wants_log(rows, args.linear)
    try:
        if args.plain:
            raise ImportError
        draw_matplotlib(rows, args.png, args.title, log)
        renderer = "matplotlib"
    except ImportError:
        draw_plain(rows, args.png, args.title, log)
        renderer = "standard library"
    print(f"wrote {args.png} ({len(rows)} points, {renderer})")


if __name__ == "__main__":
    main()

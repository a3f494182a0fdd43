using System.Globalization;
using System.Security;
using System.Text;

namespace Peft.Training;

/// <summary>
/// A run's curves as one self-contained SVG: the training losses per epoch (cross entropy and, when the method has one,
/// its auxiliary loss) above, top-1 accuracy per epoch (train, and validation and test where evaluated) below.
/// </summary>
public static class RunCurves
{
    private const int Width = 640, PanelHeight = 200, Left = 60, Right = 130, Top = 40, Gap = 50;

    private sealed record Series(string Name, string Colour, IReadOnlyList<(int Epoch, double Value)> Points);

    public static string Svg(IReadOnlyList<EpochMetrics> metrics, string title)
    {
        static List<(int, double)> Points(IEnumerable<EpochMetrics> ms, Func<EpochMetrics, double?> value) =>
            [.. ms.Select(m => (m.Epoch, value(m))).Where(p => p.Item2 is { } v && double.IsFinite(v)).Select(p => (p.Epoch, p.Item2!.Value))];

        var losses = new List<Series> { new("cross entropy", "#1f77b4", Points(metrics, m => m.Loss)) };
        if (metrics.Any(m => m.AuxiliaryLoss is not null)) losses.Add(new("auxiliary", "#9467bd", Points(metrics, m => m.AuxiliaryLoss)));
        var accuracy = new List<Series>
        {
            new("train", "#1f77b4", Points(metrics, m => m.TrainAccuracy)),
            new("val", "#2ca02c", Points(metrics, m => m.Val)),
            new("test", "#d62728", Points(metrics, m => m.Test)),
        };
        var epochs = Math.Max(1, metrics.Count == 0 ? 1 : metrics.Max(m => m.Epoch));
        var height = Top + 2 * PanelHeight + Gap + 40;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{height}\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{SecurityElement.Escape(title)}</text>\n");
        var lossMax = losses.SelectMany(s => s.Points).Select(p => p.Value).DefaultIfEmpty(1).Max();
        Panel(svg, Top, "training loss", losses, epochs, 0, lossMax > 0 ? lossMax * 1.05 : 1, "F2");
        Panel(svg, Top + PanelHeight + Gap, "top-1", accuracy, epochs, 0, 1, "P0");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + (Width - Left - Right) / 2}\" y=\"{height - 8}\" text-anchor=\"middle\">epoch</text>\n");
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static void Panel(StringBuilder svg, int top, string label, IReadOnlyList<Series> series, int epochs, double min, double max, string format)
    {
        var plotWidth = Width - Left - Right;
        double X(int epoch) => Left + plotWidth * (epochs == 1 ? 0.5 : (epoch - 1.0) / (epochs - 1));
        double Y(double v) => top + PanelHeight * (1 - (Math.Clamp(v, min, max) - min) / (max - min));
        string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);

        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{Left}\" y=\"{top}\" width=\"{plotWidth}\" height=\"{PanelHeight}\" fill=\"none\" stroke=\"#999\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{top - 6}\" font-weight=\"bold\">{label}</text>\n");
        for (var k = 0; k <= 4; k++)
        {
            var v = min + (max - min) * k / 4;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Left + plotWidth}\" y1=\"{F(Y(v))}\" y2=\"{F(Y(v))}\" stroke=\"#eee\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 4}\" y=\"{F(Y(v) + 4)}\" text-anchor=\"end\">{v.ToString(format, CultureInfo.InvariantCulture)}</text>\n");
        }
        var ticks = Math.Min(epochs, 10);
        for (var k = 0; k < ticks; k++)
        {
            var epoch = epochs == 1 ? 1 : 1 + (int)Math.Round((epochs - 1.0) * k / Math.Max(1, ticks - 1));
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(X(epoch))}\" y=\"{top + PanelHeight + 14}\" text-anchor=\"middle\">{epoch}</text>\n");
        }
        for (var i = 0; i < series.Count; i++)
        {
            var s = series[i];
            if (s.Points.Count == 0) continue;
            var path = string.Join(" ", s.Points.Select((p, k) => $"{(k == 0 ? 'M' : 'L')}{F(X(p.Epoch))},{F(Y(p.Value))}"));
            svg.Append(CultureInfo.InvariantCulture, $"<path d=\"{path}\" fill=\"none\" stroke=\"{s.Colour}\" stroke-width=\"1.5\"/>\n");
            foreach (var (epoch, value) in s.Points.Count <= 40 ? s.Points : [])
                svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(X(epoch))}\" cy=\"{F(Y(value))}\" r=\"2\" fill=\"{s.Colour}\"/>");
            var last = s.Points[^1].Value;
            svg.Append(CultureInfo.InvariantCulture, $"\n<text x=\"{Width - Right + 8}\" y=\"{top + 14 + 16 * i}\" fill=\"{s.Colour}\">{s.Name} {last.ToString(format, CultureInfo.InvariantCulture)}</text>\n");
        }
    }
}

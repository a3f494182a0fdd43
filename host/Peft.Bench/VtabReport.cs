using System.Globalization;
using System.Text;
using System.Text.Json;
using Peft.Data;

namespace Peft.Bench;

/// <summary>The mini VTAB-1k tables (markdown), raw figures (JSON) and chart (SVG) from the benchmark's runs.</summary>
public static class VtabReport
{
    public sealed record Context(TimeSpan Elapsed, string RunsIdentity, string Checkpoint, int Cores);

    /// <summary>One method on one task: mean and sample standard deviation of test top-1 (%) over seeds.</summary>
    public sealed record Cell(double Mean, double Std, int Seeds, double LrScale, double BaseLr);

    /// <param name="SeedTaskMeans">The task mean of each seed that ran every task, by seed: the spread of a method's figure.</param>
    public sealed record Row(string Method, IReadOnlyDictionary<string, Cell> Tasks, IReadOnlyDictionary<string, double> Groups,
        double MeanOfGroups, double TaskMean, double Parameters, double AdapterBytes, double Ppt, double SecondsPerRun,
        double TrainImagesPerSecond, double DataWaitShare, long PeakResidentBytes, IReadOnlyDictionary<int, double> SeedTaskMeans,
        IReadOnlyDictionary<string, double> GroupStd, double MeanOfGroupsStd, double TaskMeanStd);

    /// <summary>How a comparison came out: holds, does not hold, within noise (not significant over the seeds), or not run.</summary>
    public enum Verdict
    {
        Holds,
        DoesNotHold,
        WithinNoise,
        NotRun,
    }

    public sealed record Claim(string Statement, Verdict Verdict, string Evidence)
    {
        public bool? Holds => Verdict switch { Verdict.Holds => true, Verdict.DoesNotHold => false, _ => null };
    }

    /// <summary>Two-sided 5 % critical values of Student's t by degrees of freedom (1..10).</summary>
    private static readonly double[] TCritical = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

    public sealed record Report(string Json, string Markdown, string Svg, string Summary, IReadOnlyList<Row> Rows, IReadOnlyList<Claim> Claims);

    /// <summary>V-PETL Bench's performance-parameter trade-off: M · exp(−log10(P / C + 1)), C = 10⁷ (benchmarks reference §2.3).</summary>
    public static double Ppt(double accuracyFraction, double parameters) => accuracyFraction * Math.Exp(-Math.Log10(parameters / 1e7 + 1));

    /// <summary>Sample standard deviation (n − 1); 0 for one value.</summary>
    public static double Std(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return 0;
        var mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    public static IReadOnlyList<Row> Rows(IReadOnlyList<VtabRun> runs, IReadOnlyList<string> tasks, IReadOnlyList<string> methods)
    {
        var rows = new List<Row>();
        foreach (var method in methods)
        {
            var finals = runs.Where(r => r.Method == method && r.Phase == "final" && r.Test is not null).ToList();
            var cells = new Dictionary<string, Cell>();
            foreach (var task in tasks)
            {
                var seeds = finals.Where(r => r.Task == task).OrderBy(r => r.Seed).ToList();
                if (seeds.Count == 0) continue;
                var tests = seeds.Select(r => 100 * r.Test!.Value).ToList();
                cells[task] = new Cell(tests.Average(), Std(tests), tests.Count, seeds[0].LrScale, seeds[0].BaseLr);
            }
            if (cells.Count == 0) continue;
            var groups = new Dictionary<string, double>();
            foreach (var group in new[] { VtabGroup.Natural, VtabGroup.Specialized, VtabGroup.Structured })
            {
                var members = MiniVtab.Tasks.Where(t => t.Group == group && cells.ContainsKey(t.Name)).Select(t => cells[t.Name].Mean).ToList();
                if (members.Count > 0) groups[group.ToString()] = members.Average();
            }
            var parameters = finals.GroupBy(r => r.Task).Average(g => (double)g.First().TrainableParameters);
            var taskMean = cells.Values.Average(c => c.Mean);
            // Per seed (those that ran every task of the row): the same figures, whose spread over seeds the tables show.
            var seedFigures = finals.GroupBy(r => r.Seed)
                .Where(g => cells.Keys.All(t => g.Any(r => r.Task == t)))
                .ToDictionary(g => g.Key, g => cells.Keys.ToDictionary(t => t, t => 100 * g.First(r => r.Task == t).Test!.Value));
            Dictionary<string, double> SeedGroups(Dictionary<string, double> byTask) => groups.Keys.ToDictionary(group => group,
                group => MiniVtab.Tasks.Where(t => t.Group.ToString() == group && byTask.ContainsKey(t.Name)).Average(t => byTask[t.Name]));
            var seedTaskMeans = seedFigures.ToDictionary(kv => kv.Key, kv => kv.Value.Values.Average());
            var seedGroups = seedFigures.Values.Select(SeedGroups).ToList();
            rows.Add(new Row(method, cells, groups, groups.Values.Average(), taskMean, parameters,
                finals.GroupBy(r => r.Task).Average(g => (double)g.First().AdapterBytes), Ppt(taskMean / 100, parameters),
                finals.Where(r => r.WallSeconds > 0).Select(r => r.WallSeconds).DefaultIfEmpty(0).Average(),
                finals.Average(r => r.TrainImagesPerSecond), finals.Average(r => r.DataWaitShare), finals.Max(r => r.PeakResidentBytes),
                seedTaskMeans, groups.Keys.ToDictionary(g => g, g => Std([.. seedGroups.Select(s => s[g])])),
                Std([.. seedGroups.Select(s => s.Values.Average())]), Std([.. seedTaskMeans.Values])));
        }
        return rows;
    }

    /// <summary>
    /// The papers' qualitative claims, checked on the task means with a paired t-test over the seeds both methods ran
    /// (the same seed gives both the same data draw): "a above b" holds when the mean per-seed difference is positive and
    /// significant at 5 % (two-sided), does not hold when it is significantly negative, and is within noise otherwise,
    /// and always with one seed (no spread to test against). "a at least b" holds unless a is significantly below b.
    /// </summary>
    public static IReadOnlyList<Claim> Claims(IReadOnlyList<Row> rows)
    {
        Row? Get(string m) => rows.FirstOrDefault(r => r.Method == m);
        static string F(Row r) => $"{r.Method} {r.TaskMean:F2}{(r.SeedTaskMeans.Count > 1 ? $" ± {r.TaskMeanStd:F2}" : "")} % ({r.Parameters:N0} parameters)";
        var claims = new List<Claim>();
        void Compare(string statement, string a, string b, bool orEqual, bool fewerParameters = false)
        {
            if (Get(a) is not { } x || Get(b) is not { } y) { claims.Add(new Claim(statement, Verdict.NotRun, "not run")); return; }
            var (verdict, test) = Paired(x, y);
            // "At least" claims: a significant deficit fails them, anything else is not a failure of the claim; the
            // evidence says so, so that "holds" is not read as a significant lead.
            if (orEqual && verdict == Verdict.WithinNoise)
                (verdict, test) = (Verdict.Holds, $"{test}; not significantly below, which is all an \"at least\" claim asks");
            if (fewerParameters && x.Parameters >= y.Parameters) verdict = Verdict.DoesNotHold;
            claims.Add(new Claim(statement, verdict, $"{F(x)} vs {F(y)}; {test}"));
        }
        Compare("VPT-deep above linear probing", "vpt-deep", "linear", orEqual: false);
        Compare("VAPT at least VPT-deep, with fewer parameters", "vapt", "vpt-deep", orEqual: true, fewerParameters: true);
        Compare("GatedPT above VPT-shallow", "gated", "vpt-shallow", orEqual: false);
        Compare("DA-VPT at least VPT-deep", "davpt", "vpt-deep", orEqual: true);
        return claims;
    }

    /// <summary>Paired t-test of a's task mean against b's over their common seeds.</summary>
    public static (Verdict Verdict, string Test) Paired(Row a, Row b)
    {
        var seeds = a.SeedTaskMeans.Keys.Intersect(b.SeedTaskMeans.Keys).Order().ToList();
        var differences = seeds.Select(s => a.SeedTaskMeans[s] - b.SeedTaskMeans[s]).ToList();
        if (differences.Count < 2)
            return (Verdict.WithinNoise, $"{differences.Count} common seed{(differences.Count == 1 ? "" : "s")}: no spread to test, so within noise");
        var mean = differences.Average();
        var std = Std(differences);
        var df = differences.Count - 1;
        var critical = TCritical[Math.Min(df, TCritical.Length) - 1];
        var t = std == 0 ? (mean == 0 ? 0 : double.PositiveInfinity * Math.Sign(mean)) : mean / (std / Math.Sqrt(differences.Count));
        var verdict = Math.Abs(t) < critical ? Verdict.WithinNoise : t > 0 ? Verdict.Holds : Verdict.DoesNotHold;
        return (verdict, $"paired t-test over {differences.Count} seeds: difference {mean:F2} ± {std:F2} points, t = {t:F2} " +
                         $"(|t| ≥ {critical:F3} for 5 %, {df} d.f.)");
    }

    public static Report Build(IReadOnlyList<VtabRun> runs, IReadOnlyList<string> tasks, IReadOnlyList<string> methods, VtabBenchOptions options,
        VtabBenchVerb.CacheGain? gain, Context context)
    {
        var rows = Rows(runs, tasks, methods);
        var claims = Claims(rows);
        var json = JsonSerializer.Serialize(new
        {
            benchmark = "mini VTAB-1k", generated = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            elapsedSeconds = context.Elapsed.TotalSeconds, context.Cores, context.Checkpoint, context.RunsIdentity,
            options = new { options.Quick, options.Epochs, options.Seeds, options.LrScales, options.Parallel, options.DataSeed },
            tasks = MiniVtab.Tasks.Where(t => tasks.Contains(t.Name)).Select(t => new { t.Name, group = t.Group.ToString(), t.Classes, t.Description }),
            rows, claims, cacheGain = gain, runs = runs.OrderBy(r => r.Task).ThenBy(r => r.Method).ThenBy(r => r.Phase).ThenBy(r => r.LrScale).ThenBy(r => r.Seed),
        }, new JsonSerializerOptions { WriteIndented = true });
        return new Report(json, Markdown(rows, claims, runs, tasks, options, gain, context), Svg(rows, tasks), Summary(rows, tasks, claims), rows, claims);
    }

    private static string P(double v) => v.ToString("F2", CultureInfo.InvariantCulture);

    private static string Summary(IReadOnlyList<Row> rows, IReadOnlyList<string> tasks, IReadOnlyList<Claim> claims)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"method",-12} {string.Join(" ", tasks.Select(t => $"{Short(t),9}"))} {"groups",7} {"tasks",7} {"params",9} {"PPT",6}");
        foreach (var r in rows)
            sb.AppendLine($"{r.Method,-12} {string.Join(" ", tasks.Select(t => r.Tasks.TryGetValue(t, out var c) ? $"{P(c.Mean),9}" : $"{"-",9}"))} " +
                          $"{P(r.MeanOfGroups),7} {P(r.TaskMean),7} {r.Parameters,9:N0} {r.Ppt,6:F4}");
        foreach (var c in claims) sb.AppendLine($"{Word(c.Verdict),-14} {c.Statement}: {c.Evidence}");
        return sb.ToString();
    }

    private static string Word(Verdict verdict) => verdict switch
    {
        Verdict.Holds => "holds", Verdict.DoesNotHold => "does not hold", Verdict.WithinNoise => "within noise", _ => "not run",
    };

    private static string Short(string task) => task.Length <= 9 ? task : task[..9];

    private static string Markdown(IReadOnlyList<Row> rows, IReadOnlyList<Claim> claims, IReadOnlyList<VtabRun> runs, IReadOnlyList<string> tasks,
        VtabBenchOptions options, VtabBenchVerb.CacheGain? gain, Context context)
    {
        var md = new StringBuilder();
        var quick = options.Quick;
        md.AppendLine($"# Mini VTAB-1k{(quick ? " (quick mode)" : "")}");
        md.AppendLine();
        md.AppendLine("Generated by `peft bench vtab` — reproduce with");
        md.AppendLine();
        md.AppendLine(quick ? "    bash scripts/bench.sh vtab --quick" : "    bash scripts/bench.sh vtab");
        md.AppendLine();
        var processTime = TimeSpan.FromSeconds(runs.Sum(r => r.WallSeconds));
        md.AppendLine($"on {context.Cores} cores. The {runs.Count} runs in the tables took {processTime:hh\\:mm\\:ss} of process time in all, " +
                      $"{options.Parallel} at a time (about {processTime / options.Parallel:hh\\:mm\\:ss} of wall time); this report was written in " +
                      $"{context.Elapsed:hh\\:mm\\:ss}, finished runs being reused. " +
                      $"Raw figures: [{(quick ? "vtab-mini-quick" : "vtab-mini")}.json]({(quick ? "vtab-mini-quick" : "vtab-mini")}.json).");
        md.AppendLine();
        md.AppendLine("## Set-up");
        md.AppendLine();
        md.AppendLine("No public benchmark data or pre-trained weights can be downloaded here, so this is the closest honest equivalent built " +
                      "from real data that installs from Debian, run with the real VTAB-1k protocol:");
        md.AppendLine();
        md.AppendLine($"- **Backbone**: the small ViT of `appsettings.json` (28 px, patch 7, D 96, depth 4, 3 heads), pre-trained from scratch by " +
                      $"`peft pretrain` on Fashion-MNIST classes 0–4 (cached, reproducible from its seed; `{context.Checkpoint}`).");
        md.AppendLine("- **Tasks** (VTAB-1k processed layout: train800, val200, train800val200, test; 28×28 grey images, written by `MiniVtab`):");
        md.AppendLine();
        md.AppendLine("| task | group | classes | train / val / test | made from |");
        md.AppendLine("|---|---|---:|---|---|");
        foreach (var t in MiniVtab.Tasks.Where(t => tasks.Contains(t.Name)))
        {
            var test = t.Name switch { "fmnist_unseen" => 5 * MiniVtab.FashionTestPerClass, "digits" => 797, _ => MiniVtab.TestPerStructuredTask };
            md.AppendLine($"| {t.Name} | {t.Group} | {t.Classes} | 800 / 200 / {test} | {t.Description} |");
        }
        md.AppendLine();
        md.AppendLine("  No specialised-group task: nothing that installs from Debian is an honest stand-in for medical or remote-sensing images, " +
                      "so the group means are over *natural* and *structured* only.");
        md.AppendLine(quick
            ? $"- **Protocol (quick mode)**: no sweep; each task and method at the learning rate the full benchmark's sweep chose " +
              $"(`{options.QuickRatesFrom}`; the method's default where it has none), trained on train800val200 with seed {options.Seeds[0]}, " +
              $"{options.Epochs} epochs, test top-1 at the last epoch. These runs are the full benchmark's seed-{options.Seeds[0]} final runs, " +
              "so after a full run quick mode reuses them."
            : $"- **Protocol**: for every task and method, a learning-rate sweep (×{string.Join(", ×", options.LrScales)} the method's default) trained " +
              $"on train800 and scored on val200 at the last epoch (seed {options.Seeds[0]}); the best rate is retrained on train800val200 with seeds " +
              $"{string.Join(", ", options.Seeds)}, and test top-1 at the last epoch is reported as mean ± sample std. Test is never used to select.");
        md.AppendLine($"- {options.Epochs} epochs (warm-up {Math.Max(1, options.Epochs / 10)}), each method's recipe batch size (64; DA-VPT 32) and its own optimizer, " +
                      "schedule and weight decay (its paper's recipe); no augmentation; Fashion-MNIST mean/std normalisation. Each run is a `peft train` " +
                      $"process with one libtorch thread, {options.Parallel} at a time.");
        md.AppendLine();
        md.AppendLine("## Test top-1 (%)");
        md.AppendLine();
        md.AppendLine($"| method | {string.Join(" | ", tasks)} | natural | structured | mean of groups | task mean | trainable params | adapter | PPT |");
        md.AppendLine($"|---|{string.Join("", tasks.Select(_ => "---:|"))}---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            var cells = tasks.Select(t => r.Tasks.TryGetValue(t, out var c) ? (c.Seeds > 1 ? $"{P(c.Mean)} ± {P(c.Std)}" : P(c.Mean)) : "-");
            var spread = r.SeedTaskMeans.Count > 1;
            string G(string g) => r.Groups.TryGetValue(g, out var v) ? P(v) + (spread ? $" ± {P(r.GroupStd[g])}" : "") : "-";
            string S(double mean, double std) => P(mean) + (spread ? $" ± {P(std)}" : "");
            md.AppendLine($"| {r.Method} | {string.Join(" | ", cells)} | {G("Natural")} | {G("Structured")} | **{S(r.MeanOfGroups, r.MeanOfGroupsStd)}** | {S(r.TaskMean, r.TaskMeanStd)} | " +
                          $"{r.Parameters:N0} | {r.AdapterBytes / 1024:F1} KiB | {r.Ppt:F4} |");
        }
        md.AppendLine();
        md.AppendLine("Every figure is the mean ± sample standard deviation over the seeds (group and task means: the spread of the per-seed means). " +
                      "Trainable parameters include the head and are averaged over tasks (heads differ with the class count). The adapter is the " +
                      "`adapter.safetensors` a run writes (trainable tensors and a manifest). PPT is V-PETL Bench's M · exp(−log10(P/10⁷ + 1)) on the " +
                      "task mean; at these parameter counts (all far below 10⁷) it is nearly the accuracy itself.");
        md.AppendLine();
        md.AppendLine("![mini VTAB-1k task means](" + (quick ? "vtab-mini-quick" : "vtab-mini") + ".svg)");
        md.AppendLine();
        md.AppendLine("## The papers' claims, here");
        md.AppendLine();
        foreach (var c in claims)
            md.AppendLine($"- {c.Statement}: **{Word(c.Verdict)}** — {c.Evidence}.");
        md.AppendLine();
        if (!quick)
        {
            md.AppendLine("## Sweep (val200 top-1 %, seed " + options.Seeds[0] + "; chosen rate in bold)");
            md.AppendLine();
            md.AppendLine($"| method | {string.Join(" | ", tasks)} |");
            md.AppendLine($"|---|{string.Join("", tasks.Select(_ => "---|"))}");
            foreach (var r in rows)
            {
                var cells = tasks.Select(t =>
                {
                    var sweep = runs.Where(x => x.Task == t && x.Method == r.Method && x.Phase == "sweep").OrderBy(x => x.LrScale).ToList();
                    var chosen = r.Tasks.TryGetValue(t, out var c) ? c.LrScale : double.NaN;
                    return string.Join(" / ", sweep.Select(x =>
                    {
                        var text = $"×{x.LrScale.ToString("G3", CultureInfo.InvariantCulture)}: {P(100 * (x.Val ?? double.NaN))}";
                        return x.LrScale == chosen ? $"**{text}**" : text;
                    }));
                });
                md.AppendLine($"| {r.Method} | {string.Join(" | ", cells)} |");
            }
            md.AppendLine();
            var edges = rows.SelectMany(r => r.Tasks.Where(c => c.Value.LrScale == options.LrScales.Min() || c.Value.LrScale == options.LrScales.Max())
                .Select(c => $"{r.Method} on {c.Key} (×{c.Value.LrScale.ToString("G3", CultureInfo.InvariantCulture)})")).ToList();
            if (edges.Count > 0)
                md.AppendLine($"Chosen at an end of the grid, so a wider sweep might do better: {string.Join(", ", edges)}.");
            md.AppendLine();
        }
        md.AppendLine("## Cost");
        md.AppendLine();
        md.AppendLine("| method | seconds per final run | training images/s (1 thread) | waiting for data | peak resident memory |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Method} | {r.SecondsPerRun:F1} | {r.TrainImagesPerSecond:F0} | {100 * r.DataWaitShare:F1} % | {r.PeakResidentBytes / 1048576.0:F0} MiB |");
        md.AppendLine();
        if (gain is not null)
        {
            md.AppendLine($"Linear probing trains its head on features cached once (`Trainer:CacheFeatures`, exact: same batches, same order). On {gain.Task}, " +
                          $"one final run took {gain.CachedSeconds:F1} s with the cache and {gain.UncachedSeconds:F1} s without it " +
                          $"(×{gain.UncachedSeconds / Math.Max(1e-9, gain.CachedSeconds):F1}), test top-1 {P(100 * (gain.CachedTest ?? double.NaN))} % " +
                          $"and {P(100 * (gain.UncachedTest ?? double.NaN))} %. Both times include the process start (about 1–2 s). " +
                          "In the linear rows' training images/s, the cached runs count head-only steps.");
            md.AppendLine();
        }
        return md.ToString();
    }

    private static readonly string[] Palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

    /// <summary>One bar per method (task mean), with a dot per task; x from 0 to 100 %.</summary>
    private static string Svg(IReadOnlyList<Row> rows, IReadOnlyList<string> tasks)
    {
        const int left = 110, barHeight = 18, gap = 10, top = 40, plotWidth = 520;
        var height = top + rows.Count * (barHeight + gap) + 60;
        var width = left + plotWidth + 150;
        static string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
        var svg = new StringBuilder();
        svg.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine($"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine($"<text x=\"{left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Mini VTAB-1k: test top-1 (%), task mean (bar) and per task (dots)</text>");
        for (var tick = 0; tick <= 100; tick += 20)
        {
            var x = left + plotWidth * tick / 100.0;
            svg.AppendLine($"<line x1=\"{F(x)}\" y1=\"{top - 5}\" x2=\"{F(x)}\" y2=\"{height - 50}\" stroke=\"#ddd\"/>");
            svg.AppendLine($"<text x=\"{F(x)}\" y=\"{height - 36}\" text-anchor=\"middle\">{tick}</text>");
        }
        for (var i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var y = top + i * (barHeight + gap);
            svg.AppendLine($"<text x=\"{left - 8}\" y=\"{y + 13}\" text-anchor=\"end\">{r.Method}</text>");
            svg.AppendLine($"<rect x=\"{left}\" y=\"{y}\" width=\"{F(plotWidth * r.TaskMean / 100)}\" height=\"{barHeight}\" fill=\"#b0c4de\"/>");
            for (var t = 0; t < tasks.Count; t++)
                if (r.Tasks.TryGetValue(tasks[t], out var c))
                    svg.AppendLine($"<circle cx=\"{F(left + plotWidth * c.Mean / 100)}\" cy=\"{y + barHeight / 2}\" r=\"4\" fill=\"{Palette[t % Palette.Length]}\"/>");
            svg.AppendLine($"<text x=\"{left + plotWidth + 6}\" y=\"{y + 13}\">{F(r.TaskMean)} % · {r.Parameters:N0} p</text>");
        }
        for (var t = 0; t < tasks.Count; t++)
        {
            var x = left + t * 110;
            svg.AppendLine($"<circle cx=\"{x}\" cy=\"{height - 15}\" r=\"4\" fill=\"{Palette[t % Palette.Length]}\"/>");
            svg.AppendLine($"<text x=\"{x + 8}\" y=\"{height - 11}\">{tasks[t]}</text>");
        }
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}

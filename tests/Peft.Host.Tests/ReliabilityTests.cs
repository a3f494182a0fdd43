using System.Diagnostics;
using System.Text.Json;
using Peft.Host.Hosting;
using Peft.Training;

namespace Peft.Host.Tests;

/// <summary>
/// The hostile cases of benchmarks/reliability.md, as a careless or unlucky user would meet them, against the built
/// `peft`: every bad input is exit 2 naming the key or a named exit 1, never a stack trace, a hang or a silent result.
/// A tiny ImageFolder (two classes of 16×16 PPM images) and a random-weight ViT keep each run to a second or two.
/// </summary>
public sealed class ReliabilityTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-hostile-");

    public ReliabilityTests()
    {
        var random = new Random(3);
        foreach (var split in new[] { "train", "test" })
            foreach (var cls in new[] { "a", "b" })
            {
                var folder = Directory.CreateDirectory(Path.Combine(Data, split, cls)).FullName;
                for (var i = 0; i < 4; i++)
                {
                    var pixels = new byte[16 * 16 * 3];
                    random.NextBytes(pixels);
                    if (cls == "b") for (var k = 0; k < pixels.Length; k++) pixels[k] = (byte)(pixels[k] / 2);
                    File.WriteAllBytes(Path.Combine(folder, $"{i}.ppm"), [.. "P6\n16 16\n255\n"u8.ToArray(), .. pixels]);
                }
            }
    }

    public void Dispose() => _dir.Delete(recursive: true);

    private string Data => Path.Combine(_dir.FullName, "data");
    private string Runs => Path.Combine(_dir.FullName, "runs");

    private string[] Train(string name, params string[] more) =>
    [
        "train", "Run:OutputDir=" + Runs, "Run:Name=" + name, "Run:Seed=1",
        "Backbone:Preset=custom", "Backbone:ImageSize=16", "Backbone:PatchSize=8", "Backbone:Channels=3", "Backbone:Dim=16",
        "Backbone:Depth=1", "Backbone:Heads=2", "Backbone:MlpRatio=2", "Backbone:Checkpoint=",
        "Data:Format=imagefolder", "Data:Root=" + Data, "Data:TrainSamples=0", "Trainer:BatchSize=4", "Data:Workers=1",
        "Data:Mean=0.5,0.5,0.5", "Data:Std=0.25,0.25,0.25",
        "Method:Name=linear", "Trainer:Epochs=1", "Trainer:WarmupEpochs=0", "Trainer:BaseLr=0.1",
        // Every class unless the test names some (Data:Classes= and Data:Classes:0=1 in one layer would be both forms at once).
        .. more.Any(m => m.StartsWith("Data:Classes", StringComparison.Ordinal)) ? more : ["Data:Classes=", .. more],
    ];

    private PeftProcess.Result Peft(params string[] args) => PeftProcess.Run(_dir.FullName, args);

    private static void AssertNoStackTrace(PeftProcess.Result r) =>
        Assert.False(r.StdOut.Contains("   at ", StringComparison.Ordinal) || r.StdErr.Contains("   at ", StringComparison.Ordinal),
            "a .NET stack trace reached the console:\n" + r.StdOut + r.StdErr);

    private static void AssertInvalid(PeftProcess.Result r, params string[] messages)
    {
        Assert.True(r.ExitCode == ExitCodes.InvalidConfiguration, $"exit {r.ExitCode}:\n{r.StdOut}{r.StdErr}");
        foreach (var m in messages) Assert.Contains(m, r.StdErr);
        AssertNoStackTrace(r);
    }

    private static void AssertFailed(PeftProcess.Result r, params string[] messages)
    {
        Assert.True(r.ExitCode == ExitCodes.Failure, $"exit {r.ExitCode}:\n{r.StdOut}{r.StdErr}");
        foreach (var m in messages) Assert.Contains(m, r.StdOut + r.StdErr);
        AssertNoStackTrace(r);
    }

    private double TestAccuracy(string name)
    {
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(Runs, name, "results.json")));
        return results.RootElement.GetProperty("lastEpoch").GetProperty("test").GetDouble();
    }

    [Fact]
    public void A_run_name_reused_with_other_settings_or_data_is_refused_naming_the_keys_and_restarts_only_when_asked()
    {
        var first = Peft(Train("same"));
        Assert.True(first.ExitCode == 0, first.StdOut + first.StdErr);
        var results = File.ReadAllText(Path.Combine(Runs, "same", "results.json"));
        var config = File.ReadAllText(Path.Combine(Runs, "same", "config.json"));

        // Another learning rate and more epochs: neither resumed from the old checkpoint nor reported from its results.
        var other = Peft(Train("same", "Trainer:BaseLr=0.2", "Trainer:Epochs=2"));
        AssertInvalid(other, "Trainer:BaseLr: 0.1 in the run directory, 0.2 now", "Trainer:Epochs: 1 in the run directory, 2 now",
            "Run:Resume=false");
        Assert.Equal(results, File.ReadAllText(Path.Combine(Runs, "same", "results.json")));
        Assert.Equal(config, File.ReadAllText(Path.Combine(Runs, "same", "config.json")));

        // The same settings over other files: the dataset is part of the run's identity.
        File.Copy(Path.Combine(Data, "train", "a", "0.ppm"), Path.Combine(Data, "train", "a", "9.ppm"));
        AssertInvalid(Peft(Train("same")), "Data:Identity");

        // Run:Resume=false starts over with the new settings.
        var restarted = Peft(Train("same", "Trainer:BaseLr=0.2", "Run:Resume=false"));
        Assert.True(restarted.ExitCode == 0, restarted.StdOut + restarted.StdErr);
        Assert.Contains("\"Trainer:BaseLr\": \"0.2\"", File.ReadAllText(Path.Combine(Runs, "same", "config.json")));
        Assert.Single(File.ReadAllLines(Path.Combine(Runs, "same", "metrics.jsonl")));
    }

    [Fact]
    public void A_run_directory_held_by_another_process_is_refused_naming_its_pid()
    {
        var run = Path.Combine(Runs, "busy");
        using (RunLock.Acquire(run))
        {
            var r = Peft(Train("busy"));
            AssertFailed(r, $"is in use by another peft process (PID {Environment.ProcessId})");
            Assert.False(File.Exists(Path.Combine(run, "metrics.jsonl")));
            Assert.False(File.Exists(Path.Combine(run, "peft.log")));
        }
        // Released (as the OS releases it when its holder dies): the run goes ahead.
        var after = Peft(Train("busy"));
        Assert.True(after.ExitCode == 0, after.StdOut + after.StdErr);
    }

    [Fact]
    public void A_run_name_that_leaves_the_output_folder_is_refused()
    {
        AssertInvalid(Peft(Train("../../escaped")), "Run:Name must name a folder inside Run:OutputDir (found '../../escaped')");
        AssertInvalid(Peft(Train("/tmp/absolute")), "Run:Name must name a folder inside Run:OutputDir");
        Assert.False(Directory.Exists(Path.Combine(_dir.FullName, "..", "escaped")));
    }

    [Fact]
    public void Links_to_devices_fifos_and_corrupt_images_are_counted_bad_files_never_read_or_waited_on()
    {
        File.CreateSymbolicLink(Path.Combine(Data, "train", "a", "zero.png"), "/dev/zero");
        using (var mkfifo = Process.Start("mkfifo", [Path.Combine(Data, "train", "b", "pipe.png")])) mkfifo.WaitForExit();
        File.WriteAllBytes(Path.Combine(Data, "train", "b", "broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);

        // Without Data:SkipBadImages the first bad file stops the run: exit 1, named, no stack trace (that goes to peft.log).
        var strict = Peft(Train("strict"));
        AssertFailed(strict);
        Assert.Matches("(zero.png|pipe.png|broken.jpg)", strict.StdOut + strict.StdErr); // the first the shuffled epoch meets
        Assert.Contains("   at ", File.ReadAllText(Path.Combine(Runs, "strict", "peft.log")));

        var stopwatch = Stopwatch.StartNew();
        var skipped = Peft(Train("skipped", "Data:SkipBadImages=true"));
        Assert.True(skipped.ExitCode == 0, skipped.StdOut + skipped.StdErr);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromMinutes(1)); // neither 4 GB of /dev/zero read nor the FIFO waited on
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(Runs, "skipped", "results.json")));
        Assert.Equal(3, results.RootElement.GetProperty("skippedImages").GetInt32());
    }

    [Fact]
    public void A_run_without_a_single_usable_training_image_fails_naming_the_cause()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(Data, "train"), "*.ppm", SearchOption.AllDirectories))
            File.WriteAllBytes(file, "P6\n16 16\n255\n"u8.ToArray()); // header, no pixels
        var r = Peft(Train("empty", "Data:SkipBadImages=true"));
        AssertFailed(r, "epoch 1 had no image to train on: all 8 training images were skipped as bad (Data:SkipBadImages)");
        Assert.False(File.Exists(Path.Combine(Runs, "empty", "results.json")));
    }

    [Fact]
    public void Settings_the_data_contradicts_exit_2_naming_the_key()
    {
        AssertInvalid(Peft(Train("c", "Data:Classes:0=99")), "Data:Classes:0 is 99, but train has 2 classes (0 to 1)");
        AssertInvalid(Peft(Train("c", "Data:TrainSamples=10000000")), "Data:TrainSamples (10000000)", "holds 8");
        AssertInvalid(Peft(Train("c", "Data:Root=" + Path.Combine(_dir.FullName, "nowhere"))), "Data:Root '", "does not exist");
        AssertInvalid(Peft(Train("c", "Backbone:Checkpoint=" + Path.Combine(_dir.FullName, "none.safetensors"))),
            "Backbone:Checkpoint '", "does not exist");
    }

    [Fact]
    public void Data_samples_and_classes_are_honoured_for_imagefolder()
    {
        var r = Peft(Train("subset", "Data:Classes=1", "Data:TrainSamples=2"));
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        Assert.Contains("on 2 images, 1 classes", r.StdOut);
        Assert.Equal(1.0, TestAccuracy("subset")); // one class left: every test image is class 0
    }

    [Fact]
    public void Malformed_configuration_exits_2_naming_the_key_without_a_stack_trace()
    {
        var temp = Path.GetTempPath();
        AssertInvalid(PeftProcess.Run(temp, "info", "Trainr:Epochs=3"), "Trainr is not a known section; did you mean Trainer?");
        AssertInvalid(PeftProcess.Run(temp, "info", "Trainer:BaseLr=0,5"), "Trainer:BaseLr must be a number (found '0,5'); did you mean 0.5?");
        AssertInvalid(PeftProcess.Run(temp, "info", "Data:Mean:0=NaN"), "Data:Mean:0 must be a number (found 'NaN')");
        AssertInvalid(PeftProcess.Run(temp, "info", "Data:Std:0=0"), "Data:Std:0 must be positive");
        AssertInvalid(PeftProcess.Run(temp, "info", "Data:Mean:1=0.5"), "Data:Mean has 2 values but Backbone:Channels is 1");
        AssertInvalid(PeftProcess.Run(temp, "info", "Serilog:MinimumLevel:Default=Loud"), "Serilog:MinimumLevel:Default must be one of");

        string Config(string name, string json)
        {
            var file = Path.Combine(_dir.FullName, name);
            File.WriteAllText(file, json);
            return file;
        }
        // A scalar for a list is that one item (as Key=0.5 is), replacing appsettings' list rather than dropped beside it.
        AssertInvalid(PeftProcess.Run(temp, "info", "--config",
                Config("mean.json", """{ "Backbone": { "Channels": 3 }, "Data": { "Mean": 0.5, "Std": [0.2, 0.2, 0.2] } }""")),
            "Data:Mean has 1 value but Backbone:Channels is 3");
        AssertInvalid(PeftProcess.Run(temp, "info", "--config", Config("batch.json", """{ "Trainer": { "BatchSize": [8, 16] } }""")),
            "Trainer:BatchSize must be an integer (found a list)");
        var syntax = Config("syntax.json", "{\n  \"Trainer\": {\n    \"Epochs\": 3,\n  }},\n}\n");
        AssertInvalid(PeftProcess.Run(temp, "info", "--config", syntax), syntax + ":");
        var twice = Config("twice.json", "{\n  \"Trainer\": {\n    \"Epochs\": 3,\n    \"Epochs\": 4\n  }\n}\n");
        AssertInvalid(PeftProcess.Run(temp, "info", "--config", twice), twice + ":4: the key 'Trainer:Epochs' is given twice in one object");
        AssertInvalid(PeftProcess.Run(temp, "info", "--config", Config("nul.json", """{ "Data": { "Root": "/tmp/a\u0000b" } }""")),
            "Data:Root must be a string (found '/tmp/a\\u0000b')");
    }
}

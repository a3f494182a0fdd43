namespace Peft.Data.Tests;

public class FormatTests
{
    private static readonly NetpbmDecoder Decoder = new();

    [Fact]
    public void VTAB_list_splits_on_the_last_whitespace_and_skips_blank_lines()
    {
        using var dir = new TempDir();
        var list = dir.Write("cifar/train800.txt",
            "images/train800/000000.jpg 307\r\n\r\nimages/train800/my photo 1.jpg\t5\n  images/train800/000002.jpg 0  \n");
        var entries = ListFile.Read(list);
        Assert.Equal(
            [new ListEntry("images/train800/000000.jpg", 307, 1), new ListEntry("images/train800/my photo 1.jpg", 5, 3),
             new ListEntry("images/train800/000002.jpg", 0, 4)],
            entries);
    }

    [Theory]
    [InlineData("a.jpg 1\nimages/b.jpg\n", 2, "expected '<relative path> <label>'")]
    [InlineData("a.jpg 1\n\nb.jpg one\n", 3, "label 'one' is not a non-negative integer")]
    [InlineData("a.jpg -1\n", 1, "label '-1'")]
    public void Malformed_list_line_is_an_error_naming_file_and_line(string text, int line, string message)
    {
        using var dir = new TempDir();
        var list = dir.Write("t/test.txt", text);
        var e = Assert.Throws<DatasetFormatException>(() => ListFile.Read(list));
        Assert.Equal((list, line), (e.File, e.Line));
        Assert.StartsWith($"{list}:{line}: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void VTAB_task_folder_is_found_under_an_alias_and_labels_are_checked_against_the_catalog()
    {
        using var dir = new TempDir();
        dir.Write("cifar100/val200.txt", "images/val200/000000.jpg 99\nimages/val200/000001.jpg 3\n");
        dir.Write("oxford_pet/test.txt", "images/test/000000.jpg 37\n");

        var val = VtabDataset.Load(dir.Path, "cifar", VtabSplit.Val200, Decoder);
        Assert.Equal(2, val.Count);
        Assert.Equal(100, val.ClassCount);
        Assert.Equal([99, 3], val.Labels());
        Assert.Equal(Path.Combine(dir.Path, "cifar100", "images/val200/000001.jpg"), val.PathOf(1));
        Assert.Equal(VtabDataset.FindTaskDirectory(dir.Path, "cifar100"), VtabDataset.FindTaskDirectory(dir.Path, "CIFAR"));

        var e = Assert.Throws<DatasetFormatException>(() => VtabDataset.Load(dir.Path, "pets", VtabSplit.Test, Decoder));
        Assert.Equal(1, e.Line);
        Assert.Contains("label 37 outside the 37 classes of oxford_iiit_pet", e.Message);

        var missing = Assert.Throws<DirectoryNotFoundException>(() => VtabDataset.Load(dir.Path, "dtd", VtabSplit.Test, Decoder));
        Assert.Contains("tried dtd", missing.Message);
        Assert.Throws<ArgumentException>(() => VtabCatalog.Get("imagenet"));
    }

    [Fact]
    public void VTAB_catalog_has_the_19_tasks_in_their_groups()
    {
        Assert.Equal(19, VtabCatalog.Tasks.Count);
        Assert.Equal([7, 4, 8], Enum.GetValues<VtabGroup>().Select(g => VtabCatalog.Tasks.Count(t => t.Group == g)));
        Assert.Equal("patch_camelyon", VtabCatalog.Get("camelyon").Name);
        Assert.Equal("diabetic_retinopathy", VtabCatalog.Get("retinopathy").Name);
        Assert.Equal(397, VtabCatalog.Get("sun397").ClassCount);
        Assert.Equal(["train800.txt", "val200.txt", "train800val200.txt", "test.txt"], Enum.GetValues<VtabSplit>().Select(VtabDataset.FileName));
    }

    [Fact]
    public void Unknown_VTAB_folder_takes_its_classes_from_all_split_files()
    {
        using var dir = new TempDir();
        dir.Write("mine/train800.txt", "a.png 0\n");
        dir.Write("mine/test.txt", "b.png 4\n");
        var train = VtabDataset.LoadFolder(Path.Combine(dir.Path, "mine"), VtabSplit.Train800, Decoder);
        Assert.Equal(5, train.ClassCount);
    }

    [Fact]
    public void FGVC_label_map_is_built_once_from_train_and_applied_to_every_split()
    {
        using var dir = new TempDir();
        dir.Write("CUB/train.json", """{"001.A/a1.jpg": 1, "003.C/c1.jpg": 3, "002.B/b1.jpg": 2, "001.A/a2.jpg": 1}""");
        dir.Write("CUB/val.json", """{"003.C/c2.jpg": 3}"""); // class 1 and 2 absent: VPT's per-split map would give 0
        dir.Write("CUB/test.json", """{"009.X/x.jpg": 9}""");
        dir.Write("CUB/train_0.1.json", """{"002.B/b1.jpg": 2}""");
        var root = Path.Combine(dir.Path, "CUB");

        var train = FgvcDataset.Load(root, "train", Decoder);
        Assert.Equal(["1", "2", "3"], train.ClassNames);
        Assert.Equal([0, 2, 1, 0], train.Labels());
        Assert.Equal(Path.Combine(root, "images", "003.C/c1.jpg"), train.PathOf(1)); // CUB's image root
        Assert.Equal([2], FgvcDataset.Load(root, "val", Decoder).Labels());
        Assert.Equal([1], FgvcDataset.Load(root, "train_0.1", Decoder).Labels());
        Assert.Equal(Path.Combine(root, "x", "002.B/b1.jpg"), FgvcDataset.Load(root, "train_0.1.json", Decoder, imageRoot: "x").PathOf(0));

        var e = Assert.Throws<DatasetFormatException>(() => FgvcDataset.Load(root, "test", Decoder));
        Assert.Equal(Path.Combine(root, "test.json"), e.File);
        Assert.Contains("\"009.X/x.jpg\": class 9 does not occur in", e.Message);

        dir.Write("CUB/val.json", """{"a.jpg": "1"}""");
        e = Assert.Throws<DatasetFormatException>(() => FgvcDataset.Load(root, "val", Decoder));
        Assert.Contains("class id must be an integer", e.Message);
        dir.Write("CUB/val.json", "{\n\"a.jpg\": 1,\n oops }");
        e = Assert.Throws<DatasetFormatException>(() => FgvcDataset.Load(root, "val", Decoder));
        Assert.Equal(3, e.Line);
    }

    [Fact]
    public void ImageFolder_sorts_class_folders_ordinally_and_decodes_PPM_and_PGM()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("b_dog", "x.ppm"), TestData.SolidPpm(2, 1, 10, 20, 30));
        File.WriteAllBytes(dir.File("b_dog", "sub", "a.pgm"), TestData.Netpbm(1, 1, [77]));
        File.WriteAllBytes(dir.File("B_cat", "1.ppm"), TestData.SolidPpm(1, 1, 1, 2, 3));
        File.WriteAllText(dir.File("B_cat", "notes.txt"), "not an image");
        File.WriteAllBytes(dir.File("a_ant", "z.PPM"), TestData.SolidPpm(1, 1, 4, 5, 6));

        var ds = ImageFolderDataset.Load(dir.Path, Decoder);
        Assert.Equal(["B_cat", "a_ant", "b_dog"], ds.ClassNames); // ordinal: upper case first
        Assert.Equal([0, 1, 2, 2], ds.Labels());
        Assert.Equal(Path.Combine(dir.Path, "b_dog", "sub", "a.pgm"), ds.PathOf(2));
        using (var gray = ds.LoadImage(2))
        {
            Assert.Equal([1L, 1, 3], gray.shape); // decoded to the backbone's 3 channels by default
            Assert.Equal([77, 77, 77], gray.data<byte>().ToArray());
        }
        using var rgb = ds.LoadImage(3);
        Assert.Equal([1L, 2, 3], rgb.shape);
        Assert.Equal([10, 20, 30, 10, 20, 30], rgb.data<byte>().ToArray());

        Directory.CreateDirectory(dir.File("c_empty"));
        var e = Assert.Throws<DatasetFormatException>(() => ImageFolderDataset.Load(dir.Path, Decoder));
        Assert.Contains("c_empty", e.File);
    }
}

using Peft.Abstractions.Backbone;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace Peft.Abstractions.Methods;

/// <summary>Names a method factory for discovery (the id users write in Method:Name).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class PeftMethodAttribute(string name) : Attribute
{
    public string Name { get; } = name;
}

/// <summary>What a method is attached to.</summary>
public sealed record MethodContext(IVisionBackbone Backbone, int NumClasses, IHyperParameters Options, int Seed);

/// <summary>
/// Creates one method. A plugin assembly holds one or more public factories marked
/// <see cref="PeftMethodAttribute"/>, with a public parameterless constructor.
/// </summary>
public interface IMethodFactory
{
    /// <summary>One line for `peft methods`.</summary>
    string Description { get; }

    /// <summary>The method's [HyperParameters] record (bound from Method:Options).</summary>
    HyperParametersInfo Options { get; }

    /// <summary>The paper's training recipe; configuration's Trainer section is bound on top of it.</summary>
    TrainerOptions DefaultRecipe();

    IPeftMethod Create(MethodContext context);
}

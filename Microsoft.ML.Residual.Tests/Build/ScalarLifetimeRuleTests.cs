using System;
using System.Linq;
using System.Reflection;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Build;

/// <summary>
/// The rule that keeps training from crashing at random (docs/reliability.md): no code of ours hands libtorch a
/// <see cref="Scalar"/> that the garbage collector may free during the call. Checked on the compiled IL of the library
/// and of residualml against the TorchSharp assembly the tests run with.
/// </summary>
[TestClass]
public sealed class ScalarLifetimeRuleTests
{
    private static ScalarLifetimeAnalysis Analysis => ScalarLifetimeAnalysis.ForLoadedTorchSharp;

    [TestMethod]
    public void Library_NeverHandsLibtorchATemporaryScalar()
    {
        var violations = Analysis.Violations(typeof(ScalarSafe).Assembly, typeof(ScalarSafe));
        Assert.AreEqual(0, violations.Count, "Hold every Scalar for the native call (Models/ScalarSafe; see docs/reliability.md):\n" + string.Join("\n", violations));
    }

    /// <summary>
    /// Test code that hands libtorch a temporary Scalar fails at random like the library would, so the tests keep the rule
    /// too. The only exceptions use TorchSharp's own pieces on purpose, each for the reason given.
    /// </summary>
    private static readonly (Type Type, string? Method, string Reason)[] AllowedInTests =
    {
        (typeof(Offenders), null, "the rule's fixtures: one method per way of making a temporary Scalar; never run"),
        (typeof(BatchNormWithoutOwnForward), null, "the rule's fixture of a module inheriting TorchSharp's unsafe BatchNorm.forward; never run"),
        (typeof(Training.TrainingOptimizerTests), nameof(Training.TrainingOptimizerTests.Step_GivesTheParametersOfTorchSharpsOptimiser),
            "TorchSharp's optim.SGD and optim.AdamW are the reference our optimiser is compared against"),
        (typeof(Onnx.OnnxExporterTests), nameof(Onnx.OnnxExporterTests.PlainTorchSharpLayers_ExportWithoutOurModules),
            "exports a user's model of TorchSharp's own layers (nn.BatchNorm2d), run in eval mode only, where it counts no batches"),
    };

    [TestMethod]
    public void Tests_NeverHandLibtorchATemporaryScalar()
    {
        var methods = ScalarLifetimeAnalysis.MethodsOf(typeof(ScalarLifetimeRuleTests).Assembly)
            .Where(m => !AllowedInTests.Any(a => ScalarLifetimeAnalysis.IsWithin(m.DeclaringType, a.Type) && (a.Method is null || IsPartOf(m, a.Method))));
        var violations = Analysis.Violations(methods);
        Assert.AreEqual(0, violations.Count, "Hold every Scalar for the native call in test code too (Models/ScalarSafe, TensorTestExtensions.FloatRange, BatchNormalization2d, TrainingOptimizer; see docs/reliability.md):\n" + string.Join("\n", violations));
    }

    [TestMethod]
    public void Cli_NeverHandsLibtorchATemporaryScalar()
    {
        Assembly cli = typeof(ResidualML.Cli.Cli).Assembly;
        var violations = Analysis.Violations(cli);
        Assert.AreEqual(0, violations.Count, "Hold every Scalar for the native call (Models/ScalarSafe; see docs/reliability.md):\n" + string.Join("\n", violations));
    }

    [TestMethod]
    [DataRow(nameof(Offenders.ImplicitNumber), "makes a Scalar")]
    [DataRow(nameof(Offenders.ExplicitTemporary), "makes a Scalar")]
    [DataRow(nameof(Offenders.DefaultedAlpha), "Tensor.add_(Tensor)")]
    [DataRow(nameof(Offenders.AdditionOperator), "op_Addition")]
    [DataRow(nameof(Offenders.MultiplyByNumber), "op_Multiply")]
    [DataRow(nameof(Offenders.TorchSharpBatchNorm), "BatchNorm.forward")]
    [DataRow(nameof(Offenders.TorchSharpSgd), "SGD.step")]
    [DataRow(nameof(Offenders.ScalarInALambda), "makes a Scalar")]
    public void Rule_FindsEachWayOfMakingATemporaryScalar(string method, string expected)
    {
        var violations = Analysis.Violations(MethodsNamed(typeof(Offenders), method));
        Assert.IsTrue(violations.Any(v => v.Contains(expected, StringComparison.Ordinal)),
            $"{method}: expected a violation mentioning '{expected}', got:\n" + string.Join("\n", violations));
    }

    [TestMethod]
    public void Rule_FindsAModuleThatInheritsAnUnsafeForward()
    {
        var violations = Analysis.Violations(typeof(BatchNormWithoutOwnForward).GetConstructors().Cast<MethodBase>());
        Assert.IsTrue(violations.Any(v => v.Contains("inherits", StringComparison.Ordinal) && v.Contains("BatchNorm.forward", StringComparison.Ordinal)), string.Join("\n", violations));
    }

    [TestMethod]
    public void Rule_AcceptsHeldScalarsAndTheLibrarysBatchNorm()
    {
        var violations = Analysis.Violations(MethodsNamed(typeof(Offenders), nameof(Offenders.HeldScalars)));
        Assert.AreEqual(0, violations.Count, string.Join("\n", violations));
        Assert.AreEqual(0, Analysis.Violations(typeof(BatchNormalization2d).GetConstructors().Cast<MethodBase>()).Count);
    }

    [TestMethod]
    public void Analysis_SeparatesTorchSharpsSafeAndUnsafeOverloads()
    {
        Type tensor = typeof(Tensor);
        Assert.IsTrue(Analysis.IsUnsafe(tensor.GetMethod(nameof(Tensor.add_), new[] { tensor })!), "add_(Tensor) passes a temporary alpha");
        Assert.IsFalse(Analysis.IsUnsafe(tensor.GetMethod(nameof(Tensor.add_), new[] { tensor, typeof(Scalar) })!), "add_(Tensor, Scalar) takes the caller's alpha");
        Assert.IsTrue(Analysis.IsUnsafe(tensor.GetMethod("op_Multiply", new[] { tensor, typeof(double) })!));
        Assert.IsFalse(Analysis.IsUnsafe(tensor.GetMethod("op_Multiply", new[] { tensor, tensor })!));
        Assert.IsFalse(Analysis.IsUnsafe(typeof(nn.functional).GetMethods().Single(m => m.Name == nameof(nn.functional.batch_norm))));
    }

    private static MethodBase[] MethodsNamed(Type type, string name) =>
        ScalarLifetimeAnalysis.MethodsOf(new[] { type }.Concat(type.GetNestedTypes(BindingFlags.NonPublic | BindingFlags.Public)))
            .Where(m => IsPartOf(m, name)).ToArray();

    // The method called `name`, or code the compiler generated from its body: lambdas and local functions (named
    // <name>b__…, <name>g__…) and the state machines of its iterators and async local functions (types named <…<name>…>d).
    private static bool IsPartOf(MethodBase method, string name)
    {
        if (method.Name == name || method.Name.Contains($"<{name}>", StringComparison.Ordinal)) return true;
        for (Type? type = method.DeclaringType; type is not null; type = type.DeclaringType)
            if (type.Name.Contains($"<{name}>", StringComparison.Ordinal)) return true;
        return false;
    }

    // Never run: compiled only so that the rule can be shown to find each pattern.
    private static class Offenders
    {
        public static Tensor ImplicitNumber(Tensor t) => t.add_(1);

        public static Tensor ExplicitTemporary(Tensor t) => t.mul(0.5.ToScalar());

        public static Tensor DefaultedAlpha(Tensor t, Tensor g) => t.add_(g);

        public static Tensor AdditionOperator(Tensor a, Tensor b) => a + b;

        public static Tensor MultiplyByNumber(Tensor a) => a * 0.5;

        public static nn.Module<Tensor, Tensor> TorchSharpBatchNorm() => nn.BatchNorm2d(4);

        public static optim.Optimizer TorchSharpSgd(Tensor weight) => optim.SGD(new[] { new Parameter(weight) }, 0.1);

        public static Func<Tensor, Tensor> ScalarInALambda() => t => t.clamp_min(0.0);

        public static Tensor HeldScalars(Tensor a, Tensor b) => a.Plus(b).Times(0.5).AtLeast(0.0);
    }

    private sealed class BatchNormWithoutOwnForward : BatchNorm
    {
        public BatchNormWithoutOwnForward() : base(4, 1e-5, 0.1, true, true, null, null, "BatchNorm2d")
        {
        }

        protected override void ValidateInputDimensions(Tensor input)
        {
        }
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace Microsoft.ML.Residual.Tests.Build;

/// <summary>
/// Finds, in compiled IL, the calls that can hand libtorch a <see cref="Scalar"/> the garbage collector may free
/// during the call (docs/reliability.md, "Scalars and the garbage collector").
/// <para>
/// A TorchSharp method is <em>unsafe</em> when its body makes a Scalar (an implicit conversion, <c>ToScalar</c>, or
/// the constructor) and never disposes one, when it calls or references an unsafe TorchSharp method, or, for a
/// constructor, when the type it builds overrides a virtual method with an unsafe one (so that creating
/// <c>nn.BatchNorm2d</c> is unsafe because its <c>forward</c> is). The set is computed from the TorchSharp assembly the
/// tests run with, so it follows TorchSharp's version.
/// </para>
/// <para>
/// A method of the library <em>violates the rule</em> when it makes a Scalar itself (outside the types allowed to) or
/// calls, references or constructs anything unsafe in TorchSharp.
/// </para>
/// </summary>
internal sealed class ScalarLifetimeAnalysis
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private readonly Assembly torchSharp = typeof(Scalar).Assembly;

    // Unsafe TorchSharp method → the unsafe method it reaches, or null where it makes the Scalar itself.
    private readonly Dictionary<MethodBase, MethodBase?> unsafeMethods = new();

    private ScalarLifetimeAnalysis()
    {
        var edges = new Dictionary<MethodBase, HashSet<MethodBase>>();
        foreach (MethodBase method in MethodsOf(torchSharp))
        {
            if (IsScalarSource(method)) continue;
            bool creates = false, disposes = false;
            var callees = new HashSet<MethodBase>();
            foreach (var (op, callee) in Callees(method))
            {
                if (IsScalarSource(callee)) creates = true;
                else if (callee.DeclaringType == typeof(Scalar) && callee.Name == nameof(Scalar.Dispose)) disposes = true;
                else if (callee.Module.Assembly == torchSharp) callees.Add(Definition(callee));

                // An object built here runs its type's overrides when called through a base class (a module's forward).
                if (op == OpCodes.Newobj && callee.DeclaringType is { } built && built.Assembly == torchSharp)
                    foreach (MethodInfo overrideMethod in OverridesReachedBy(built)) callees.Add(Definition(overrideMethod));
            }
            if (creates && !disposes) unsafeMethods[method] = null;
            edges[method] = callees;
        }

        // Propagate to callers until nothing changes.
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var (caller, callees) in edges)
            {
                if (unsafeMethods.ContainsKey(caller)) continue;
                MethodBase? reached = callees.FirstOrDefault(unsafeMethods.ContainsKey);
                if (reached is null) continue;
                unsafeMethods[caller] = reached;
                changed = true;
            }
        }
    }

    /// <summary>The analysis of the TorchSharp assembly the process runs with.</summary>
    public static ScalarLifetimeAnalysis ForLoadedTorchSharp { get; } = new();

    /// <summary>Whether <paramref name="method"/> (a TorchSharp method) can hand libtorch a Scalar that may be freed.</summary>
    public bool IsUnsafe(MethodBase method) => unsafeMethods.ContainsKey(Definition(method));

    /// <summary>Why <paramref name="method"/> is unsafe, following the chain to the Scalar it makes.</summary>
    public string Explain(MethodBase method)
    {
        var chain = new List<string>();
        MethodBase? current = Definition(method);
        var seen = new HashSet<MethodBase>();
        while (current is not null && seen.Add(current) && unsafeMethods.TryGetValue(current, out MethodBase? reached))
        {
            chain.Add(Describe(current));
            current = reached;
        }

        return string.Join(" → ", chain) + " (makes a temporary Scalar)";
    }

    /// <summary>
    /// The rule's violations in <paramref name="library"/>: one line per method, naming the method and the call.
    /// Methods of the types in <paramref name="allowedToMakeScalars"/> may make Scalars (they hold them for the call).
    /// </summary>
    public IReadOnlyList<string> Violations(Assembly library, params Type[] allowedToMakeScalars) =>
        Violations(MethodsOf(library), allowedToMakeScalars);

    /// <summary>As <see cref="Violations(Assembly, Type[])"/>, for the given methods.</summary>
    public IReadOnlyList<string> Violations(IEnumerable<MethodBase> methods, params Type[] allowedToMakeScalars)
    {
        var violations = new List<string>();
        foreach (MethodBase method in methods)
        {
            bool allowed = allowedToMakeScalars.Any(t => IsWithin(method.DeclaringType, t));
            foreach (var (op, callee) in Callees(method).Distinct())
            {
                if (IsScalarSource(callee))
                {
                    if (!allowed) violations.Add($"{Describe(method)} makes a Scalar ({Describe(callee)}): use ScalarSafe");
                }
                else if (callee.Module.Assembly == torchSharp && IsUnsafe(callee))
                {
                    violations.Add($"{Describe(method)} calls {Explain(callee)}");
                }
                else if (callee.Module.Assembly == torchSharp && op == OpCodes.Newobj && callee.DeclaringType is not null)
                {
                    MethodInfo? unsafeOverride = OverridesReachedBy(callee.DeclaringType).FirstOrDefault(IsUnsafe);
                    if (unsafeOverride is not null) violations.Add($"{Describe(method)} creates {callee.DeclaringType.Name}, whose {Explain(unsafeOverride)}");
                }
            }

            // A library type deriving from TorchSharp inherits its virtual methods: an unsafe one that is not overridden runs.
            if (method is ConstructorInfo && method.DeclaringType is { } type && type.Assembly != torchSharp)
            {
                MethodInfo? inherited = OverridesReachedBy(type).FirstOrDefault(m => m.DeclaringType!.Assembly == torchSharp && IsUnsafe(m));
                if (inherited is not null) violations.Add($"{Describe(method)} builds a type that inherits {Explain(inherited)}");
            }
        }

        return violations.Distinct().OrderBy(v => v, StringComparer.Ordinal).ToList();
    }

    /// <summary>The methods and constructors with bodies, of every type of <paramref name="assembly"/>, nested and compiler-generated ones included.</summary>
    internal static IEnumerable<MethodBase> MethodsOf(Assembly assembly) => MethodsOf(TypesOf(assembly));

    /// <summary>The methods and constructors with bodies declared by <paramref name="types"/>.</summary>
    internal static IEnumerable<MethodBase> MethodsOf(IEnumerable<Type> types)
    {
        foreach (Type type in types)
        {
            MethodBase[] methods;
            try
            {
                methods = type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)).ToArray();
            }
            catch (Exception e) when (e is TypeLoadException or System.IO.FileNotFoundException)
            {
                continue;
            }

            foreach (MethodBase method in methods)
                if (!method.IsAbstract) yield return method;
        }
    }

    private static Type[] TypesOf(Assembly assembly)
    {
        Type[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            types = e.Types.Where(t => t is not null).ToArray()!;
        }

        return types;
    }

    /// <summary>The methods <paramref name="method"/>'s IL calls, constructs or takes a delegate of (call, callvirt, newobj, ldftn, ldvirtftn).</summary>
    internal static IEnumerable<(OpCode Op, MethodBase Callee)> Callees(MethodBase method)
    {
        byte[]? il;
        try
        {
            il = method.GetMethodBody()?.GetILAsByteArray();
        }
        catch (Exception e) when (e is BadImageFormatException or InvalidOperationException)
        {
            il = null;
        }

        if (il is null) yield break;
        Type[]? typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
        Type[]? methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int position = 0;
        while (position < il.Length)
        {
            short value = il[position++];
            if (value == 0xFE) value = unchecked((short)(0xFE00 | il[position++]));
            OpCode op = OpCodesByValue[value];
            if (op.OperandType == OperandType.InlineMethod)
            {
                int token = BitConverter.ToInt32(il, position);
                MethodBase? callee = null;
                try
                {
                    callee = method.Module.ResolveMethod(token, typeArguments, methodArguments);
                }
                catch (Exception e) when (e is ArgumentException or TypeLoadException or MissingMethodException or BadImageFormatException or System.IO.FileNotFoundException)
                {
                }

                if (callee is not null) yield return (op, callee);
            }

            position += OperandSize(op, il, position);
        }
    }

    private static int OperandSize(OpCode op, byte[] il, int position) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, position),
        _ => 4,
    };

    // The Scalar factories: the implicit conversions, ToScalar, and the constructors.
    private static bool IsScalarSource(MethodBase method) =>
        (method.DeclaringType == typeof(Scalar) && (method.Name == "op_Implicit" || method is ConstructorInfo))
        || (method.DeclaringType == typeof(ScalarExtensionMethods) && method.Name == nameof(ScalarExtensionMethods.ToScalar));

    // The virtual methods that objects of the type run when called through a base class: every override declared
    // in the type or a base class, including base TorchSharp implementations that are not overridden further down.
    private static IEnumerable<MethodInfo> OverridesReachedBy(Type type)
    {
        var seen = new HashSet<string>();
        for (Type? current = type; current is not null && current != typeof(object); current = current.BaseType)
        {
            Type definition = current.IsGenericType ? current.GetGenericTypeDefinition() : current;
            foreach (MethodInfo method in definition.GetMethods(Declared))
            {
                if (!method.IsVirtual || method.IsAbstract) continue;
                string signature = method.Name + "(" + string.Join(",", method.GetParameters().Select(p => p.ParameterType.Name)) + ")";
                if (seen.Add(signature)) yield return method;
            }
        }
    }

    /// <summary>Whether <paramref name="type"/> is <paramref name="container"/> or nested in it (compiler-generated types included).</summary>
    internal static bool IsWithin(Type? type, Type container)
    {
        for (Type? current = type; current is not null; current = current.DeclaringType)
            if (current == container) return true;
        return false;
    }

    private static MethodBase Definition(MethodBase method)
    {
        try
        {
            return method.Module.ResolveMethod(method.MetadataToken) ?? method;
        }
        catch (ArgumentException)
        {
            return method;
        }
    }

    private static string Describe(MethodBase method)
    {
        string parameters = string.Join(", ", method.GetParameters().Select(p => p.ParameterType.Name));
        return $"{method.DeclaringType?.FullName}.{method.Name}({parameters})";
    }
}

// Makes TorchSharp's native library load on Linux systems whose libstdc++ predates GCC 13
// (Debian 12, Ubuntu 22.04). libLibTorchSharp.so asks for the symbol version GLIBCXX_3.4.32 for a
// single symbol (std::ios_base_library_init) that GCC 13's <iostream> references and never calls.
// Marking that version requirement "weak" (VER_FLG_WEAK in its Vernaux entry) lets the dynamic
// loader accept the library when the version is missing; nothing else about the file changes.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory as the PatchElfVersionNeed task
// (see Microsoft.ML.Residual.targets), and by the test project with ELF_PATCH_NO_MSBUILD defined.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Microsoft.ML.Residual.Build
{
    /// <summary>Outcome of <see cref="ElfVersionNeed.MarkWeak"/>.</summary>
    public enum ElfPatchOutcome
    {
        /// <summary>The flag was set and the file rewritten.</summary>
        Patched,
        /// <summary>The requirement already carried the weak flag; the file was not touched.</summary>
        AlreadyWeak,
        /// <summary>The file does not require that version; nothing to do.</summary>
        NotRequired,
        /// <summary>The file is not a 64-bit little-endian ELF object; nothing was done.</summary>
        NotElf64,
    }

    /// <summary>Reads and edits the GNU symbol-versioning sections of 64-bit little-endian ELF files.</summary>
    public static class ElfVersionNeed
    {
        private const uint SectionTypeVersionNeed = 0x6ffffffe; // SHT_GNU_verneed
        private const uint SectionTypeVersionDefinition = 0x6ffffffd; // SHT_GNU_verdef
        private const ushort VersionFlagWeak = 0x2; // VER_FLG_WEAK

        /// <summary>
        /// Sets VER_FLG_WEAK on every version requirement named <paramref name="versionName"/> in the
        /// file at <paramref name="path"/>. The file is rewritten atomically (temporary file + rename).
        /// </summary>
        public static ElfPatchOutcome MarkWeak(string path, string versionName)
        {
            byte[] image = File.ReadAllBytes(path);
            var flagOffsets = new List<long>();
            if (!TryEnumerateAuxEntries(image, SectionTypeVersionNeed, needs: true, (name, flagsOffset) =>
            {
                if (name == versionName) flagOffsets.Add(flagsOffset);
            }))
            {
                return ElfPatchOutcome.NotElf64;
            }

            if (flagOffsets.Count == 0) return ElfPatchOutcome.NotRequired;
            bool changed = false;
            foreach (long offset in flagOffsets)
            {
                ushort flags = ReadUInt16(image, offset);
                if ((flags & VersionFlagWeak) != 0) continue;
                WriteUInt16(image, offset, (ushort)(flags | VersionFlagWeak));
                changed = true;
            }

            if (!changed) return ElfPatchOutcome.AlreadyWeak;
            string temporary = path + ".patching";
            File.WriteAllBytes(temporary, image);
            // Rename over the original: a hard link into the NuGet cache is replaced, never written through.
            File.Replace(temporary, path, destinationBackupFileName: null);
            return ElfPatchOutcome.Patched;
        }

        /// <summary>Version requirements (name → weak?) recorded in the file; empty when it is not ELF64.</summary>
        public static IReadOnlyDictionary<string, bool> ReadRequirements(string path)
        {
            byte[] image = File.ReadAllBytes(path);
            var result = new Dictionary<string, bool>(StringComparer.Ordinal);
            TryEnumerateAuxEntries(image, SectionTypeVersionNeed, needs: true, (name, flagsOffset) =>
                result[name] = (ReadUInt16(image, flagsOffset) & VersionFlagWeak) != 0);
            return result;
        }

        /// <summary>Version names a shared library defines (e.g. "GLIBCXX_3.4.30"); empty when it is not ELF64.</summary>
        public static ISet<string> ReadDefinitions(string path)
        {
            byte[] image = File.ReadAllBytes(path);
            var result = new HashSet<string>(StringComparer.Ordinal);
            TryEnumerateAuxEntries(image, SectionTypeVersionDefinition, needs: false, (name, _) => result.Add(name));
            return result;
        }

        /// <summary>
        /// Finds the libstdc++.so.6 the dynamic loader would most likely use (LD_LIBRARY_PATH, then the
        /// usual multiarch and lib64 folders), or null when none is found.
        /// </summary>
        public static string? FindHostLibStdCxx()
        {
            var folders = new List<string>();
            string? libraryPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(libraryPath)) folders.AddRange(libraryPath.Split(':'));
            folders.AddRange(new[]
            {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            });
            foreach (string folder in folders)
            {
                if (folder.Length == 0) continue;
                string candidate = Path.Combine(folder, "libstdc++.so.6");
                if (File.Exists(candidate)) return candidate;
            }

            return null;
        }

        // Walks Verneed/Vernaux (needs = true) or Verdef/Verdaux (needs = false) entries and reports each
        // auxiliary entry's name and the file offset of its flags field (Vernaux only; 0 for Verdaux).
        private static bool TryEnumerateAuxEntries(byte[] image, uint sectionType, bool needs, Action<string, long> visit)
        {
            if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
                return false;
            if (image[4] != 2 /* ELFCLASS64 */ || image[5] != 1 /* ELFDATA2LSB */) return false;

            long sectionTableOffset = (long)ReadUInt64(image, 40);
            int sectionEntrySize = ReadUInt16(image, 58);
            int sectionCount = ReadUInt16(image, 60);
            if (sectionEntrySize < 64 || sectionTableOffset <= 0 ||
                sectionTableOffset + (long)sectionEntrySize * sectionCount > image.Length)
                return false;

            for (int index = 0; index < sectionCount; index++)
            {
                long header = sectionTableOffset + (long)index * sectionEntrySize;
                if (ReadUInt32(image, header + 4) != sectionType) continue;
                long sectionOffset = (long)ReadUInt64(image, header + 24);
                long sectionSize = (long)ReadUInt64(image, header + 32);
                int stringSectionIndex = (int)ReadUInt32(image, header + 40);
                uint entryCount = ReadUInt32(image, header + 44);
                if (stringSectionIndex >= sectionCount || sectionOffset + sectionSize > image.Length) return false;
                long stringHeader = sectionTableOffset + (long)stringSectionIndex * sectionEntrySize;
                long stringsOffset = (long)ReadUInt64(image, stringHeader + 24);
                long stringsSize = (long)ReadUInt64(image, stringHeader + 32);
                if (stringsOffset + stringsSize > image.Length) return false;

                long entry = sectionOffset;
                for (uint e = 0; e < entryCount; e++)
                {
                    if (entry + 16 > sectionOffset + sectionSize) return false;
                    // Verneed: version u16, cnt u16, file u32, aux u32, next u32.
                    // Verdef:  version u16, flags u16, ndx u16, cnt u16, hash u32, aux u32, next u32.
                    int auxCount = needs ? ReadUInt16(image, entry + 2) : ReadUInt16(image, entry + 6);
                    long aux = entry + (needs ? ReadUInt32(image, entry + 8) : ReadUInt32(image, entry + 12));
                    for (int a = 0; a < auxCount; a++)
                    {
                        if (aux + (needs ? 16 : 8) > sectionOffset + sectionSize) return false;
                        // Vernaux: hash u32, flags u16, other u16, name u32, next u32.  Verdaux: name u32, next u32.
                        uint nameOffset = needs ? ReadUInt32(image, aux + 8) : ReadUInt32(image, aux);
                        string? name = ReadString(image, stringsOffset, stringsSize, nameOffset);
                        if (name != null) visit(name, needs ? aux + 4 : 0);
                        uint nextAux = needs ? ReadUInt32(image, aux + 12) : ReadUInt32(image, aux + 4);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }

                    uint next = needs ? ReadUInt32(image, entry + 12) : ReadUInt32(image, entry + 16);
                    if (next == 0) break;
                    entry += next;
                }
            }

            return true;
        }

        private static string? ReadString(byte[] image, long tableOffset, long tableSize, uint offset)
        {
            if (offset >= tableSize) return null;
            long start = tableOffset + offset;
            long end = start;
            long limit = tableOffset + tableSize;
            while (end < limit && image[end] != 0) end++;
            return Encoding.ASCII.GetString(image, (int)start, (int)(end - start));
        }

        private static ushort ReadUInt16(byte[] b, long o) => (ushort)(b[o] | (b[o + 1] << 8));

        private static uint ReadUInt32(byte[] b, long o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));

        private static ulong ReadUInt64(byte[] b, long o) => ReadUInt32(b, o) | ((ulong)ReadUInt32(b, o + 4) << 32);

        private static void WriteUInt16(byte[] b, long o, ushort value)
        {
            b[o] = (byte)value;
            b[o + 1] = (byte)(value >> 8);
        }
    }

#if !ELF_PATCH_NO_MSBUILD
    /// <summary>
    /// MSBuild task: marks the given symbol-version requirement weak in each file, when the host's
    /// libstdc++ does not define it. Never fails the build: problems are reported as messages.
    /// </summary>
    public class PatchElfVersionNeed : Microsoft.Build.Utilities.Task
    {
        /// <summary>The native libraries to patch (copies in the build or publish output).</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>The version requirement to relax, e.g. GLIBCXX_3.4.32.</summary>
        [Microsoft.Build.Framework.Required]
        public string VersionName { get; set; } = string.Empty;

        /// <summary>Patch even when the host libstdc++ defines the version (used by tests and cross-builds).</summary>
        public bool Force { get; set; }

        /// <inheritdoc />
        public override bool Execute()
        {
            if (Files.Length == 0) return true;
            if (!Force)
            {
                string? host = ElfVersionNeed.FindHostLibStdCxx();
                if (host != null && ElfVersionNeed.ReadDefinitions(host).Contains(VersionName))
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                        "{0} defines {1}; TorchSharp's native library needs no patch.", host, VersionName);
                    return true;
                }
            }

            foreach (Microsoft.Build.Framework.ITaskItem item in Files)
            {
                string path = item.ItemSpec;
                try
                {
                    ElfPatchOutcome outcome = ElfVersionNeed.MarkWeak(path, VersionName);
                    Log.LogMessage(outcome == ElfPatchOutcome.Patched
                            ? Microsoft.Build.Framework.MessageImportance.Normal
                            : Microsoft.Build.Framework.MessageImportance.Low,
                        "{0}: {1} ({2}).", path, outcome, VersionName);
                }
                catch (Exception exception) when (exception is IOException || exception is UnauthorizedAccessException)
                {
                    Log.LogWarning("Could not mark {0} weak in {1}: {2} TorchSharp may fail to load on this system.",
                        VersionName, path, exception.Message);
                }
            }

            return true;
        }
    }
#endif
}

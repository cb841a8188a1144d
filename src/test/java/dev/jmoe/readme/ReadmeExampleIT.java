package dev.jmoe.readme;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Use it from Java" example, exactly as written: extracted from README.md, compiled against the built
 * jar (target/jmoe.jar, made in the package phase before this integration test runs) and run in a fresh JVM from the
 * project directory. If the API or the example drifts apart, this fails.
 */
class ReadmeExampleIT {
    @TempDir Path dir;

    @Test
    void theJavaExampleInTheReadmeCompilesAndRunsAgainstTheJar() throws Exception {
        Path project = Path.of(System.getProperty("jmoe.project.dir", ".")).toAbsolutePath();
        String readme = Files.readString(project.resolve("README.md"), StandardCharsets.UTF_8);
        int section = readme.indexOf("## Use it from Java");
        assertTrue(section >= 0, "README has a \"Use it from Java\" section");
        Matcher block = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL).matcher(readme.substring(section));
        assertTrue(block.find(), "the section has a java code block");
        String source = block.group(1);
        Matcher cls = Pattern.compile("public class (\\w+)").matcher(source);
        assertTrue(cls.find(), "the example is a public class");
        Path file = dir.resolve(cls.group(1) + ".java");
        Files.writeString(file, source);

        Path jar = project.resolve("target/jmoe.jar");
        assertTrue(Files.isRegularFile(jar), "the jar is built before the integration tests: " + jar);
        int compiled = ToolProvider.getSystemJavaCompiler().run(null, null, null, "-cp", jar.toString(), "-d", dir.toString(), file.toString());
        assertEquals(0, compiled, "the README example compiles against the jar");

        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        ProcessBuilder pb = new ProcessBuilder(java.toString(), "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", jar + File.pathSeparator + dir, cls.group(1)).directory(project.toFile()).redirectErrorStream(true);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the example finishes");
        String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), text);
        List<String> lines = text.lines().filter(l -> !l.startsWith("WARNING:")).toList();
        assertTrue(lines.stream().anyMatch(l -> l.matches("(MAX_TOKENS|END_OF_GENERATION) after \\d+ tokens, [0-9.]+ tokens/s, \\d+ expert bytes moved")),
                text);
    }
}

package dev.jmoe.cli;

import dev.jmoe.gguf.GgufFormatException;
import dev.jmoe.model.ModelException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point: {@code jmoe <command> [options]}. */
@Command(name = "jmoe", mixinStandardHelpOptions = true, version = "jmoe 0.1.0",
        description = "Runs Mixture-of-Experts language models (GGUF) on memory-starved machines.",
        subcommands = {GenerateCommand.class, ChatCommand.class, InspectCommand.class, LogitsCommand.class,
                PerplexityCommand.class, MakeModelCommand.class, QuantizeCommand.class, PredictEvalCommand.class, PredictBenchCommand.class, OffloadBenchCommand.class, FidelityCommand.class, EvalCommand.class, BenchCommand.class, WorkerCommand.class, ShadowCommand.class, ClusterBenchCommand.class, SimulateCommand.class, MakeEvalTaskCommand.class, ReplayCommand.class, SpeedCommand.class, ServeCommand.class, ServeBenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs a command line with the given output streams; returns the exit code (used by tests too). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        Registries.loadPlugins();
        CommandLine cl = commandLine();
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> failed(ex, commandLine.getErr()));
        // A wrong flag or value gets the same one-line "jmoe: error:" form as every other failure, naming the option and
        // the value, and a pointer to the command's help instead of picocli's whole usage text (which buried the one
        // line that mattered under forty lines of options).
        cl.setParameterExceptionHandler((ex, badArgs) -> {
            CommandLine at = ex.getCommandLine();
            PrintWriter e = at.getErr();
            e.println("jmoe: error: " + ex.getMessage());
            CommandLine.UnmatchedArgumentException.printSuggestions(ex, e);
            e.println("Try '" + at.getCommandSpec().qualifiedName() + " --help' for its options.");
            e.flush();
            return at.getCommandSpec().exitCodeOnInvalidInput();
        });
        int code;
        try {
            code = cl.execute(args);
        } catch (ExceptionInInitializerError ex) {
            // picocli hands only Exceptions to the handler above; a class whose static setup refused a -D setting
            // (dev.jmoe.tensor.Tuning) throws this Error, which gets the same one line
            code = failed(ex, err);
        }
        // Writers made with autoflush flush only on println/printf: a command's last print() must not be lost at exit.
        out.flush();
        err.flush();
        return code;
    }

    /**
     * The command line with every subcommand taking -h/--help, and the registries' entries in the help texts as they
     * are now (a plug-in registered before this call is listed and accepted).
     */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        for (CommandLine sub : cl.getSubcommands().values()) {
            if (!sub.getCommandSpec().mixinStandardHelpOptions() && !(sub.getCommand() instanceof CommandLine.HelpCommand)) {
                sub.getCommandSpec().mixinStandardHelpOptions(true);
            }
            sub.getCommandSpec().usageMessage().sortOptions(false);
        }
        cl.setResourceBundle(Registries.bundle());
        return cl;
    }

    /** Prints a failure as one "jmoe: error:" line (with its stack trace when JMOE_DEBUG is set); returns exit code 1. */
    private static int failed(Throwable ex, PrintWriter err) {
        err.println("jmoe: error: " + describe(ex));
        if (System.getenv("JMOE_DEBUG") != null) ex.printStackTrace(err);
        err.flush();
        return 1;
    }

    /** A one-line explanation of a failure, without a stack trace from deep inside. */
    static String describe(Throwable ex) {
        Throwable t = ex;
        // a class whose static setup refused a setting (Tuning): the refusal is what to tell
        if (t instanceof ExceptionInInitializerError init && init.getCause() != null) t = init.getCause();
        if (t instanceof UncheckedIOException u && u.getCause() != null) t = u.getCause();
        if (t instanceof NoSuchFileException nf) return (nf.getReason() != null ? nf.getReason() : "no such file") + ": " + nf.getFile();
        if (t instanceof GgufFormatException || t instanceof dev.jmoe.gguf.GgufException || t instanceof ModelException || t instanceof IllegalArgumentException
                || t instanceof IllegalStateException || t instanceof IOException) {
            return t.getMessage();
        }
        String msg = t.getMessage();
        return t.getClass().getSimpleName() + (msg == null ? "" : ": " + msg);
    }
}

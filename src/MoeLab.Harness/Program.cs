using MoeLab.Harness.Cli;

return CommandLine.Run(args);

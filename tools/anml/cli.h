/* cli.h -- the anml command-line tool: one function per subcommand. Only the CLI prints to
 * stdout or calls exit(). Each returns the process exit status. */
#ifndef ANML_CLI_H
#define ANML_CLI_H

int anml_cli_info(int argc, char **argv);
int anml_cli_convert(int argc, char **argv);
int anml_cli_predict(int argc, char **argv);
int anml_cli_run(int argc, char **argv);
int anml_cli_tokenize(int argc, char **argv);
int anml_cli_synth(int argc, char **argv);

#endif

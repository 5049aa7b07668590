/* accel: credentials from a profile's credential_process.
 *
 * The command is run with /bin/sh -c (as the AWS SDKs for Go, Rust and
 * JavaScript run it; the AWS CLI splits the line itself, which gives
 * the same result for commands written by its documented rules: double
 * quotes around words with spaces, no variables, no "~").  It must
 * print on stdout, and exit 0 after, one JSON object:
 *
 *   { "Version": 1, "AccessKeyId": "...", "SecretAccessKey": "...",
 *     "SessionToken": "...", "Expiration": "2026-12-05T21:00:00Z" }
 *
 * SessionToken and Expiration (ISO 8601) are optional; without
 * Expiration the credentials never expire and the command is not run
 * again.  Source: https://docs.aws.amazon.com/cli/latest/userguide/
 * cli-configure-sourcing-external.html and the SDKs and Tools reference
 * guide, "Process credential provider".
 */

#ifndef ACCEL_CREDS_PROCESS_H
#define ACCEL_CREDS_PROCESS_H

#include "creds.h"

/* How long the command may take, in seconds: the AWS SDK for Go's
 * default; ACCEL_CREDS_PROCESS_TIMEOUT changes it (1 to 86400).
 */
#define CREDS_PROCESS_TIMEOUT 60

/* Run command and parse its output.  origin says where the command was
 * configured ("profile dev in /root/.aws/config"), for messages.  The
 * process's stderr is ours; its stdout (secrets) is never printed.
 * Returns 0 with *out set, or -1 after reporting an error (non-zero
 * exit, timeout, output that is not valid, credentials already
 * expired).
 */
int creds_fetch_process (const char *command, const char *origin,
                         struct aws_creds **out);

#endif /* ACCEL_CREDS_PROCESS_H */

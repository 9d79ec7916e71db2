// Package dockercli is Skiff's Docker-like container verbs: run, create,
// start, stop, ps, logs, exec, inspect, network, volume, info and the rest.
// Every command is a thin client of the Docker Engine API that the Skiff
// engine serves (unix:///run/skiff/docker.sock by default; DOCKER_HOST or
// --host/-H override it), spoken with github.com/moby/moby/client, and
// behaves like the docker CLI 28: the same flags, output columns and exit
// codes (run exits with the container's status; 125 for CLI or engine
// errors; 126 and 127 when the command cannot be invoked or is not found).
//
// Flag values are checked as they are parsed, by small pure functions
// (ParsePorts, ParseVolume, ParseMount, ParseRestartPolicy, ParseMemory,
// ParseCPUs, ParseEnvFile, ...), so bad input never reaches the engine.
//
// Only internal/cli imports this package: it adds Commands to the root
// command and ends the process with the code a StatusError carries.
package dockercli

// Command box is the program inside the test images (built FROM scratch):
//
//	box run [--ignore-term] [--log FILE]  run until SIGTERM (or forever), appending "start" and "stop" lines with times to FILE
//	box echo WORDS...                      print WORDS to stdout and "err" to stderr
//	box write FILE TEXT                    write TEXT into FILE
//	box exit N                             exit with status N
//	box id                                 print the user id
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "box: want run, echo, write, exit or id")
		os.Exit(2)
	}
	switch args := os.Args[2:]; os.Args[1] {
	case "run":
		run(args)
	case "echo":
		fmt.Println(strings.Join(args, " "))
		fmt.Fprintln(os.Stderr, "err")
	case "write":
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "exit":
		n, _ := strconv.Atoi(args[0])
		os.Exit(n)
	case "id":
		fmt.Println(os.Getuid())
	}
}

func run(args []string) {
	ignore, logFile := false, ""
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--ignore-term":
			ignore = true
		case "--log":
			i++
			logFile = args[i]
		}
	}
	note := func(what string) {
		if logFile == "" {
			return
		}
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s %s\n", what, os.Getenv("HOSTNAME"), time.Now().UTC().Format(time.RFC3339Nano))
			f.Close()
		}
	}
	note("start")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	for range sig {
		if !ignore {
			note("stop")
			return
		}
	}
}

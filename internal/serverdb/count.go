package serverdb

import (
	"bytes"
	"errors"
)

// insertCounter counts the rows of each table in a mysqldump SQL stream as it
// passes: every CREATE TABLE line registers a table with 0 rows, and every
// top-level parenthesised tuple after VALUES in an INSERT INTO line is one
// row. Strings are skipped with their backslash escapes; binary columns are
// hex (--hex-blob), so no byte of data can look like a tuple. Counting the
// stream gives the rows of exactly the dump's snapshot, which no second
// connection could see.
type insertCounter struct {
	counts map[string]int64
	state  int
	line   []byte // the start of the current line, until it is classified
	name   []byte
	table  string
	last   []byte // the last bytes before VALUES
	inStr  bool
	esc    bool
	depth  int
}

const (
	csLineStart = iota // reading a line's first bytes
	csSkip             // skipping to the end of the line
	csName             // reading a table name up to its closing backtick
	csPreValues        // in an INSERT, before VALUES
	csValues           // in an INSERT's values
)

var (
	prefixInsert = []byte("INSERT INTO `")
	prefixCreate = []byte("CREATE TABLE `")
	keyValues    = []byte("VALUES")
)

func newInsertCounter() *insertCounter {
	return &insertCounter{counts: map[string]int64{}}
}

func (c *insertCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		c.step(b)
	}
	return len(p), nil
}

func (c *insertCounter) step(b byte) {
	switch c.state {
	case csLineStart:
		if b == '\n' {
			c.line = c.line[:0]
			return
		}
		c.line = append(c.line, b)
		switch {
		case bytes.Equal(c.line, prefixInsert), bytes.Equal(c.line, prefixCreate):
			c.state, c.name = csName, c.name[:0]
		case !bytes.HasPrefix(prefixInsert, c.line) && !bytes.HasPrefix(prefixCreate, c.line):
			c.state = csSkip
		}
	case csSkip:
		if b == '\n' {
			c.state, c.line = csLineStart, c.line[:0]
		}
	case csName:
		if b != '`' {
			c.name = append(c.name, b)
			return
		}
		c.table = string(c.name)
		if _, ok := c.counts[c.table]; !ok {
			c.counts[c.table] = 0
		}
		if bytes.Equal(c.line, prefixCreate) {
			c.state = csSkip
			return
		}
		c.state, c.last = csPreValues, c.last[:0]
	case csPreValues:
		c.last = append(c.last, b)
		if len(c.last) > len(keyValues) {
			c.last = c.last[1:]
		}
		if bytes.Equal(c.last, keyValues) {
			c.state, c.depth, c.inStr, c.esc = csValues, 0, false, false
		}
	case csValues:
		switch {
		case c.inStr && c.esc:
			c.esc = false
		case c.inStr && b == '\\':
			c.esc = true
		case c.inStr && b == '\'':
			c.inStr = false
		case c.inStr:
		case b == '\'':
			c.inStr = true
		case b == '(':
			if c.depth == 0 {
				c.counts[c.table]++
			}
			c.depth++
		case b == ')':
			c.depth--
		case b == ';' && c.depth == 0:
			c.state = csSkip
		}
	}
}

// err reports a stream that ended inside an INSERT statement.
func (c *insertCounter) err() error {
	if c.state == csValues || c.state == csPreValues || c.state == csName {
		return errors.New("the dump ended inside a statement")
	}
	return nil
}

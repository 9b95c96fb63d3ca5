package serverdb

import (
	"bytes"
	"errors"
	"path"
	"strconv"
)

// insertCounter counts the rows of each table in a mysqldump SQL stream as it
// passes: every CREATE TABLE line registers a table with 0 rows, and every
// top-level parenthesised tuple after VALUES in an INSERT INTO line is one
// row. Strings are skipped with their backslash escapes; binary columns are
// hex (--hex-blob), so no byte of data can look like a tuple. Counting the
// stream gives the rows of exactly the dump's snapshot, which no second
// connection could see. The attachments rows are also read (their columns
// named by the CREATE TABLE), for the snapshot's attachment check.
type insertCounter struct {
	counts map[string]int64
	state  int
	line   []byte // the start of the current line, until it is classified
	name   []byte
	table  string
	create string // the table whose CREATE TABLE block is being read
	last   []byte // the last bytes before VALUES
	inStr  bool
	esc    bool
	depth  int

	columns []string // of the attachments table, in order
	field   []byte
	fields  []string
	rows    []AttachmentRow
}

const (
	csLineStart = iota // reading a line's first bytes
	csSkip             // skipping to the end of the line
	csName             // reading a table name up to its closing backtick
	csColumn           // reading a column name in a CREATE TABLE block
	csPreValues        // in an INSERT, before VALUES
	csValues           // in an INSERT's values
)

var (
	prefixInsert = []byte("INSERT INTO `")
	prefixCreate = []byte("CREATE TABLE `")
	prefixColumn = []byte("  `")
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
		inCreate := c.create != ""
		switch {
		case bytes.Equal(c.line, prefixInsert), bytes.Equal(c.line, prefixCreate):
			c.state, c.name = csName, c.name[:0]
		case inCreate && bytes.Equal(c.line, prefixColumn):
			c.state, c.name = csColumn, c.name[:0]
		case inCreate && b == ')' && len(c.line) == 1:
			c.create, c.state = "", csSkip
		case !bytes.HasPrefix(prefixInsert, c.line) && !bytes.HasPrefix(prefixCreate, c.line) &&
			!(inCreate && bytes.HasPrefix(prefixColumn, c.line)):
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
			c.state, c.create = csSkip, c.table
			if c.table == "attachments" {
				c.columns = nil
			}
			return
		}
		c.state, c.last = csPreValues, c.last[:0]
	case csColumn:
		if b != '`' {
			c.name = append(c.name, b)
			return
		}
		if c.create == "attachments" {
			c.columns = append(c.columns, string(c.name))
		}
		c.state = csSkip
	case csPreValues:
		c.last = append(c.last, b)
		if len(c.last) > len(keyValues) {
			c.last = c.last[1:]
		}
		if bytes.Equal(c.last, keyValues) {
			c.state, c.depth, c.inStr, c.esc = csValues, 0, false, false
		}
	case csValues:
		c.value(b)
	}
}

// value steps through an INSERT's values, counting tuples and, for the
// attachments table, collecting their fields.
func (c *insertCounter) value(b byte) {
	collect := c.table == "attachments" && c.depth == 1
	switch {
	case c.inStr && c.esc:
		c.esc = false
		if collect {
			c.field = append(c.field, unescape(b))
		}
	case c.inStr && b == '\\':
		c.esc = true
	case c.inStr && b == '\'':
		c.inStr = false
	case c.inStr:
		if collect {
			c.field = append(c.field, b)
		}
	case b == '\'':
		c.inStr = true
	case b == '(':
		if c.depth == 0 {
			c.counts[c.table]++
			c.field, c.fields = c.field[:0], c.fields[:0]
		}
		c.depth++
	case b == ')':
		c.depth--
		if c.depth == 0 && c.table == "attachments" {
			c.fields = append(c.fields, string(c.field))
			c.attachmentRow()
		}
	case collect && b == ',':
		c.fields = append(c.fields, string(c.field))
		c.field = c.field[:0]
	case b == ';' && c.depth == 0:
		c.state = csSkip
	case collect:
		c.field = append(c.field, b)
	}
}

func unescape(b byte) byte {
	switch b {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case '0':
		return 0
	}
	return b
}

// attachmentRow keeps the collected tuple of the attachments table as a row.
func (c *insertCounter) attachmentRow() {
	var cipher, id, size string
	for i, col := range c.columns {
		if i >= len(c.fields) {
			return
		}
		switch col {
		case "cipher_uuid":
			cipher = c.fields[i]
		case "id":
			id = c.fields[i]
		case "file_size":
			size = c.fields[i]
		}
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if cipher == "" || id == "" || err != nil {
		return
	}
	c.rows = append(c.rows, AttachmentRow{Path: path.Join("attachments", cipher, id), Size: n})
}

// err reports a stream that ended inside an INSERT statement.
func (c *insertCounter) err() error {
	if c.state == csValues || c.state == csPreValues || c.state == csName || c.state == csColumn {
		return errors.New("the dump ended inside a statement")
	}
	return nil
}

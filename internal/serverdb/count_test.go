package serverdb

import (
	"strings"
	"testing"
)

// The counter reads tuples and the attachments rows through quotes, escapes,
// parentheses and semicolons inside strings, and a stream cut inside an
// INSERT is an error.
func TestInsertCounter(t *testing.T) {
	dump := "-- MariaDB dump\n" +
		"CREATE TABLE `attachments` (\n" +
		"  `id` char(36) NOT NULL,\n" +
		"  `cipher_uuid` char(36) NOT NULL,\n" +
		"  `file_name` text NOT NULL,\n" +
		"  `file_size` bigint(20) NOT NULL,\n" +
		"  PRIMARY KEY (`id`)\n" +
		") ENGINE=InnoDB;\n" +
		"CREATE TABLE `ciphers` (\n  `uuid` char(36) NOT NULL\n);\n" +
		"CREATE TABLE `empty` (\n  `x` int\n);\n" +
		"INSERT INTO `attachments` VALUES ('a1','c1','it\\'s (1);',10),('a2','c2','x\\\\',20);\n" +
		"INSERT INTO `ciphers` VALUES ('(1)'),('\\');'),(0x28292C),(NULL);\n" +
		"INSERT INTO `ciphers` VALUES ('x');\n"
	c := newInsertCounter()
	for _, chunk := range strings.SplitAfter(dump, "(") { // odd write boundaries
		c.Write([]byte(chunk))
	}
	if err := c.err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"attachments": 2, "ciphers": 5, "empty": 0}
	for k, v := range want {
		if c.counts[k] != v {
			t.Errorf("%s: %d rows, want %d (all: %v)", k, c.counts[k], v, c.counts)
		}
	}
	if len(c.counts) != len(want) {
		t.Errorf("tables %v", c.counts)
	}
	if len(c.rows) != 2 || c.rows[0] != (AttachmentRow{Path: "attachments/c1/a1", Size: 10}) || c.rows[1] != (AttachmentRow{Path: "attachments/c2/a2", Size: 20}) {
		t.Errorf("attachment rows %+v", c.rows)
	}
	cut := newInsertCounter()
	cut.Write([]byte("INSERT INTO `ciphers` VALUES ('a'),('b"))
	if cut.err() == nil {
		t.Error("a stream cut inside an INSERT passed")
	}
}

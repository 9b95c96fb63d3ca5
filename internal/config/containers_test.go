package config_test

import "testing"

// TestContainers_Enabled: container operations are on only when a label
// variable is set (the old name and its key=value form included).
func TestContainers_Enabled(t *testing.T) {
	if c := mustLoad(t, nil); c.Containers.Enabled || c.Containers.StopLabel != "true" {
		t.Fatalf("defaults: %+v", c.Containers)
	}
	for _, tc := range []struct{ env, stop, exec string }{
		{"BACKUP_STOP_DURING_BACKUP_LABEL=true", "true", ""},
		{"BACKUP_STOP_CONTAINER_LABEL=backup.stop=true", "backup.stop=true", ""},
		{"EXEC_LABEL=vw-1", "true", "vw-1"},
	} {
		c := mustLoad(t, nil, tc.env)
		if !c.Containers.Enabled || c.Containers.StopLabel != tc.stop || c.Containers.ExecLabel != tc.exec {
			t.Errorf("%s: %+v", tc.env, c.Containers)
		}
	}
}

// TestContainers_OddLabel: a label value with odd characters is one line
// naming the variable.
func TestContainers_OddLabel(t *testing.T) {
	for _, env := range []string{
		"BACKUP_STOP_DURING_BACKUP_LABEL=yes please",
		"BACKUP_STOP_CONTAINER_LABEL=a=b=c",
		"EXEC_LABEL=$(rm -rf /)",
		"BACKUP_STOP_DURING_BACKUP_LABEL==true",
	} {
		name := env[:len(env)-len(env[indexEq(env):])]
		mustFail(t, name, nil, env)
	}
}

func indexEq(s string) int {
	for i := range s {
		if s[i] == '=' {
			return i
		}
	}
	return len(s)
}

package mapkv_test

import "os"

func mkdirTemp() (string, error) { return os.MkdirTemp("", "mapkv-bench-") }

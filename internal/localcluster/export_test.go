package localcluster

// SetChoosePorts replaces the port chooser until restore is called.
func SetChoosePorts(f func(n int) ([]int, error)) (restore func()) {
	old := choosePorts
	choosePorts = f
	return func() { choosePorts = old }
}

// FreePorts is the real chooser.
var FreePorts = freePorts

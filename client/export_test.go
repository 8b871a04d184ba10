package client

// QueuedFrames returns how many request frames wait in the live
// connection's write queue (0 without a connection).
func QueuedFrames(c *Client) int {
	c.cmu.Lock()
	cn := c.cn
	c.cmu.Unlock()
	if cn == nil {
		return 0
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	return len(cn.wq)
}

// UseLibraryReader makes the connections dialled until restore read their
// frames with the WebSocket library.
func UseLibraryReader() (restore func()) {
	useLibraryReader.Store(true)
	return func() { useLibraryReader.Store(false) }
}

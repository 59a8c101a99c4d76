package dispatch

// SetBeforeDisable has fn run between the read of a subscription that is
// being disabled and the write of its status.
func SetBeforeDisable(d *Dispatcher, fn func(id string)) { d.beforeDisable = fn }

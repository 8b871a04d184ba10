package convapi

// IndexedModeration returns m with its mutes indexed, as a MemberCache
// keeps it.
func IndexedModeration(m Moderation) Moderation {
	m.index()
	return m
}

// Package natter holds the domain types shared by every tier of natter: the
// message as it is logged, stored, delivered and sent over the wire, and the
// conversation. Behaviour lives in the packages under edge/, workers/ and
// jetstream/.
package natter

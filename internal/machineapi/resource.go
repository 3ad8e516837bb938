package machineapi

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/yamlx"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
)

// ResourceServer serves the resource store.
type ResourceServer struct {
	rpb.UnimplementedResourceServiceServer
	Store    *resource.Store
	Registry *resource.Registry
}

// lookup resolves a type name or alias and the namespace, and refuses sensitive types to
// callers without os:admin.
func (s *ResourceServer) lookup(ctx context.Context, ns, typ string) (string, resource.Definition, error) {
	def, err := s.Registry.Lookup(typ)
	if err != nil {
		return "", def, status.Errorf(codes.NotFound, "unknown resource type %q; list the types with `plinthctl get rd`", typ)
	}
	if def.Sensitive && !isAdmin(ctx) {
		return "", def, status.Errorf(codes.PermissionDenied, "%s holds secrets: reading it needs role os:admin", def.Type)
	}
	if ns == "" {
		ns = def.DefaultNamespace
	}
	return ns, def, nil
}

func toProto(r resource.Resource) (*rpb.Resource, error) {
	md := r.Metadata()
	spec, err := yamlx.Marshal(r.Spec())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode %s/%s: %v", md.Type, md.ID, err)
	}
	return &rpb.Resource{
		Metadata: &rpb.Metadata{
			Namespace: md.Namespace, Type: md.Type, Id: md.ID, Version: md.Version, Phase: string(md.Phase),
			Owner: md.Owner, Labels: md.Labels, Created: timestamppb.New(md.Created), Updated: timestamppb.New(md.Updated),
		},
		Spec: spec,
	}, nil
}

func storeError(err error) error {
	switch {
	case errors.Is(err, resource.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, resource.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case err != nil:
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

// Get implements the Get RPC.
func (s *ResourceServer) Get(ctx context.Context, req *rpb.GetRequest) (*rpb.GetResponse, error) {
	ns, def, err := s.lookup(ctx, req.GetNamespace(), req.GetType())
	if err != nil {
		return nil, err
	}
	r, err := s.Store.Get(ns, def.Type, req.GetId())
	if err != nil {
		return nil, storeError(err)
	}
	pr, err := toProto(r)
	if err != nil {
		return nil, err
	}
	return &rpb.GetResponse{Resource: pr}, nil
}

// List implements the List RPC.
func (s *ResourceServer) List(req *rpb.ListRequest, stream grpc.ServerStreamingServer[rpb.ListResponse]) error {
	ns, def, err := s.lookup(stream.Context(), req.GetNamespace(), req.GetType())
	if err != nil {
		return err
	}
	items, err := s.Store.List(ns, def.Type)
	if err != nil {
		return storeError(err)
	}
	for _, r := range items {
		pr, err := toProto(r)
		if err != nil {
			return err
		}
		if err := stream.Send(&rpb.ListResponse{Resource: pr}); err != nil {
			return err
		}
	}
	return nil
}

// Watch implements the Watch RPC: the existing resources, a bootstrapped marker, then
// changes, until the client goes away.
func (s *ResourceServer) Watch(req *rpb.WatchRequest, stream grpc.ServerStreamingServer[rpb.WatchResponse]) error {
	ctx := stream.Context()
	ns, def, err := s.lookup(ctx, req.GetNamespace(), req.GetType())
	if err != nil {
		return err
	}
	var ch <-chan resource.Event
	if req.GetId() != "" {
		ch, err = s.Store.WatchID(ctx, ns, def.Type, req.GetId())
	} else {
		ch, err = s.Store.Watch(ctx, ns, def.Type, resource.WatchOptions{Bootstrap: true})
	}
	if err != nil {
		return storeError(err)
	}
	for ev := range ch {
		resp := &rpb.WatchResponse{}
		switch ev.Type {
		case resource.Created:
			resp.EventType = rpb.EventType_EVENT_TYPE_CREATED
		case resource.Updated:
			resp.EventType = rpb.EventType_EVENT_TYPE_UPDATED
		case resource.Destroyed:
			resp.EventType = rpb.EventType_EVENT_TYPE_DESTROYED
		case resource.Bootstrapped:
			resp.EventType = rpb.EventType_EVENT_TYPE_BOOTSTRAPPED
		default:
			return status.Errorf(codes.ResourceExhausted, "the watch fell behind (%s); start it again", ev.Type)
		}
		if ev.Resource != nil {
			if resp.Resource, err = toProto(ev.Resource); err != nil {
				return err
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return nil
}

// Definitions implements the Definitions RPC.
func (s *ResourceServer) Definitions(context.Context, *rpb.DefinitionsRequest) (*rpb.DefinitionsResponse, error) {
	resp := &rpb.DefinitionsResponse{}
	for _, d := range s.Registry.List() {
		def := &rpb.Definition{Type: d.Type, Aliases: d.Aliases, DefaultNamespace: d.DefaultNamespace, Sensitive: d.Sensitive}
		for _, c := range d.PrintColumns {
			def.PrintColumns = append(def.PrintColumns, &rpb.Column{Name: c.Name, JsonPath: c.JSONPath})
		}
		resp.Definitions = append(resp.Definitions, def)
	}
	return resp, nil
}
